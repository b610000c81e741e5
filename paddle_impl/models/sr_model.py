"""BaseSRModel: the PSNR stage (PaddleGAN's sr_model.py): generator trained with a pixel loss (+ optional edge loss)."""
from common_data.errors import ConfigError

from ..archs import build_arch
from ..losses import build_loss
from . import MODELS
from .base_model import BaseModel


@MODELS.register()
class BaseSRModel(BaseModel):
    """Generator + ``pixel_criterion`` (+ ``edge_criterion``), one optimizer, optional EMA of the generator.

    Loss keys: ``l_pix``, ``l_edge``. ``pretrain_network_g`` is loaded before the EMA copy is made, so the EMA
    starts from it. ``to_static`` is PaddleGAN's key, accepted and ignored (training is eager).
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

    def check_loss(self, total):
        if not hasattr(total, "backward"):
            raise ConfigError(f"model ({type(self).__name__}): no loss configured; add model.pixel_criterion "
                              f"(e.g. {{name: L1Loss}})")
        return total

    def pixel_losses(self, output, target):
        """l_pix and l_edge of ``output`` against ``target`` (those configured), summed into the total."""
        total = 0.0
        if self.pixel_criterion is not None:
            self.losses["l_pix"] = self.pixel_criterion(output, target)
            total = total + self.losses["l_pix"]
        if self.edge_criterion is not None:
            self.losses["l_edge"] = self.edge_criterion(output, target)
            total = total + self.losses["l_edge"]
        return total

    def train_iter(self, optimizers=None):
        optimizer = self.optimizer_for("generator")
        self.losses.clear()
        self.zero_grad(optimizer)
        self.output = self.nets["generator"](self.lq)
        self.visual_items["output"] = self.output
        self.backward(self.check_loss(self.pixel_losses(self.output, self.pixel_target())))
        if self.step(optimizer):
            self.update_ema()

    def pixel_target(self):
        return self.gt
