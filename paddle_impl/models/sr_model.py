"""BaseSRModel: the PSNR stage (PaddleGAN's sr_model.py): generator trained with a pixel loss (+ optional edge loss)."""
from common_data.errors import ConfigError
from common_data.training.recipes import SRRecipe
from common_data.training.steps import to_static_choice

from ..archs import build_arch
from ..losses import build_loss
from . import MODELS
from .base_model import BaseModel


@MODELS.register()
class BaseSRModel(SRRecipe, BaseModel):
    """Generator + ``pixel_criterion`` (+ ``edge_criterion``), one optimizer, optional EMA of the generator.

    Loss keys: ``l_pix``, ``l_edge``. ``pretrain_network_g`` is loaded before the EMA copy is made, so the EMA
    starts from it. ``to_static: true`` (PaddleGAN's key) has the backend train it through a static-graph + oneDNN
    program (engine/static_step.py's StaticStep), several times faster on CPU; it needs ``FLAGS_use_mkldnn=1``
    before paddle is imported (tools/main.py sets it) and supports a pixel_criterion alone, without gradient
    accumulation.
    """

    def __init__(self, generator, pixel_criterion=None, edge_criterion=None, ema_decay=0.0, pretrain_network_g=None,
                 strict_load_g=True, param_key_g=None, to_static=None, loss_stages=None):
        super().__init__()
        self.nets["generator"] = build_arch(generator, "model.generator")
        self.pixel_criterion = build_loss(pixel_criterion, "model.pixel_criterion") if pixel_criterion else None
        self.edge_criterion = build_loss(edge_criterion, "model.edge_criterion") if edge_criterion else None
        if pretrain_network_g:
            self.load_pretrained("generator", pretrain_network_g, strict_load_g, param_key_g)
        self.setup_ema(ema_decay)
        self.to_static = to_static_choice({"to_static": to_static})  # True / False / "auto" (the backend decides)
        if self.to_static is True and (edge_criterion or not pixel_criterion):
            raise ConfigError("model.to_static: the static-graph step trains a pixel_criterion alone; remove "
                              "model.edge_criterion or set -o model.to_static=false")
        self.set_loss_stages(loss_stages)
