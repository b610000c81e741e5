"""BaseSRModel: the PSNR stage (PaddleGAN's sr_model.py): generator trained with a pixel loss (+ optional edge loss)."""
import numpy as np
import paddle

from common_data.errors import ConfigError
from common_data.training.recipes import SRRecipe

from ..archs import build_arch
from ..losses import build_loss
from . import MODELS
from .base_model import BaseModel


@MODELS.register()
class BaseSRModel(SRRecipe, BaseModel):
    """Generator + ``pixel_criterion`` (+ ``edge_criterion``), one optimizer, optional EMA of the generator.

    Loss keys: ``l_pix``, ``l_edge``. ``pretrain_network_g`` is loaded before the EMA copy is made, so the EMA
    starts from it. ``to_static: true`` (PaddleGAN's key) trains through a static-graph + oneDNN program
    (engine/static_step.py), several times faster on CPU; it needs ``FLAGS_use_mkldnn=1`` before paddle is
    imported (tools/main.py sets it) and supports a pixel_criterion alone, without gradient accumulation.
    """

    def __init__(self, generator, pixel_criterion=None, edge_criterion=None, ema_decay=0.0, pretrain_network_g=None,
                 strict_load_g=True, param_key_g=None, to_static=False):
        super().__init__()
        self.nets["generator"] = build_arch(generator, "model.generator")
        self.pixel_criterion = build_loss(pixel_criterion, "model.pixel_criterion") if pixel_criterion else None
        self.edge_criterion = build_loss(edge_criterion, "model.edge_criterion") if edge_criterion else None
        if pretrain_network_g:
            self.load_pretrained("generator", pretrain_network_g, strict_load_g, param_key_g)
        self.setup_ema(ema_decay)
        self.to_static = bool(to_static)
        self._generator_cfg, self._pixel_cfg = generator, pixel_criterion
        self._static, self._pending_static_state = None, None
        if self.to_static and (edge_criterion or not pixel_criterion):
            raise ConfigError("model.to_static: the static-graph step trains a pixel_criterion alone; remove "
                              "model.edge_criterion or set -o model.to_static=false")

    def train_iter(self, optimizers=None):
        if self.to_static:
            return self.static_train_iter()
        return super().train_iter(optimizers)

    # ---- to_static: the compiled step ---------------------------------------------------------------------------
    def static_train_iter(self):
        if self.accumulate_steps > 1:
            raise ConfigError("model.to_static does not combine with accumulate_steps > 1; drop one of them")
        lq, target = self.lq.numpy(), self.pixel_target().numpy()
        if self._static is None or not self._static.accepts(lq, target):
            self._static = self.build_static_step(lq.shape, target.shape)
        self.losses.clear()
        self.losses["l_pix"] = self._static.step(lq, target)
        generator = self.nets["generator"]
        generator.set_state_dict({k: paddle.to_tensor(v) for k, v in self._static.get_weights().items()})
        self.visual_items.pop("output", None)  # computed on demand by get_current_visuals

    def build_static_step(self, lq_shape, gt_shape):
        from ..engine.optimizer import build_optimizer
        from ..engine.static_step import StaticPixelStep
        from ..archs import build_arch as arch
        from ..losses import build_loss as loss
        opt_name = self.optimizer_name_for("generator")
        block = self.optimizer_blocks[opt_name]
        step = StaticPixelStep(lambda: arch(self._generator_cfg, "model.generator"),
                               lambda: loss(self._pixel_cfg, "model.pixel_criterion"),
                               lambda params: build_optimizer(block, params, self.lr_scheduler,
                                                              where=f"optimizer.{opt_name}"),
                               lq_shape, gt_shape)
        step.set_weights(self.nets["generator"].state_dict())
        old = self._static
        state = self._pending_static_state if old is None else {f"generator.{k}": v
                                                                for k, v in old.optimizer_state().items()}
        if state:
            step.set_optimizer_state({k[len("generator."):]: _array(v) for k, v in state.items()
                                      if k.startswith("generator.")})
            self._pending_static_state = None
        return step

    def get_current_visuals(self):
        if self.to_static and "output" not in self.visual_items and self.lq is not None:
            with paddle.no_grad():
                self.visual_items["output"] = self.nets["generator"](self.lq)
        return self.visual_items

    def training_state(self):
        state = super().training_state()
        if self.to_static:
            opt_name = self.optimizer_name_for("generator")
            if self._static is not None:
                opt_state = {f"generator.{k}": v for k, v in self._static.optimizer_state().items()}
            else:
                opt_state = dict(self._pending_static_state or {})
            opt_state["LR_Scheduler"] = self.lr_scheduler.state_dict()
            state[opt_name] = opt_state
        return state

    def load_training_state(self, state, path):
        super().load_training_state(state, path)
        if self.to_static:
            opt_name = self.optimizer_name_for("generator")
            self._pending_static_state = {k: v for k, v in state[opt_name].items() if k.startswith("generator.")}
            self._static = None


def _array(value):
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)
