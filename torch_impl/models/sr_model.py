"""BaseSRModel: the PSNR stage (generator + pixel loss, optional edge loss), PaddleGAN's BaseSRModel."""
from common_data.training.recipes import SRRecipe

from . import MODELS
from .base_model import BaseModel


@MODELS.register()
class BaseSRModel(SRRecipe, BaseModel):
    """``l_pix = pixel_criterion(G(lq), gt)`` (+ ``l_edge``), one optimizer for the generator.

    ``pretrain_network_g`` / ``strict_load_g`` / ``param_key_g`` load starting weights (BasicSR); ``ema_decay`` > 0
    keeps an EMA generator for validation and weight files; ``to_static`` is PaddleGAN's key and ignored here.
    """

    def __init__(self, generator, pixel_criterion=None, edge_criterion=None, ema_decay=0.0, pretrain_network_g=None,
                 strict_load_g=True, param_key_g=None, to_static=None, loss_stages=None):
        super().__init__(ema_decay=ema_decay)
        self.build_net('generator', generator, 'model.generator')
        self.pixel_criterion = self.build_criterion(pixel_criterion, 'model.pixel_criterion')
        self.edge_criterion = self.build_criterion(edge_criterion, 'model.edge_criterion')
        if pretrain_network_g:
            self.load_pretrained('generator', pretrain_network_g, strict_load_g, param_key_g,
                                 'model.pretrain_network_g')
        self.set_loss_stages(loss_stages)
