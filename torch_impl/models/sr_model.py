"""BaseSRModel: the PSNR stage (generator + pixel loss, optional edge loss), PaddleGAN's BaseSRModel."""
from common_data.errors import ConfigError

from . import MODELS
from .base_model import BaseModel


@MODELS.register()
class BaseSRModel(BaseModel):
    """``l_pix = pixel_criterion(G(lq), gt)`` (+ ``l_edge``), one optimizer for the generator.

    ``pretrain_network_g`` / ``strict_load_g`` / ``param_key_g`` load starting weights (BasicSR); ``ema_decay`` > 0
    keeps an EMA generator for validation and weight files; ``to_static`` is PaddleGAN's key and ignored here.
    """

    def __init__(self, generator, pixel_criterion=None, edge_criterion=None, ema_decay=0.0, pretrain_network_g=None,
                 strict_load_g=True, param_key_g=None, to_static=False):
        super().__init__(ema_decay=ema_decay)
        self.build_net('generator', generator, 'model.generator')
        self.pixel_criterion = self.build_criterion(pixel_criterion, 'model.pixel_criterion')
        self.edge_criterion = self.build_criterion(edge_criterion, 'model.edge_criterion')
        if pretrain_network_g:
            self.load_pretrained('generator', pretrain_network_g, strict_load_g, param_key_g,
                                 'model.pretrain_network_g')

    def require(self, attr, example):
        if getattr(self, attr, None) is None:
            raise ConfigError(f"model.{attr} is missing for {type(self).__name__}: add e.g. {example}")

    def pixel_target(self):
        return self.gt

    def generator_losses(self, output):
        """Pixel (+ edge) losses of ``output``; returns the total and records each in ``self.losses``."""
        total = 0.0
        if self.pixel_criterion is not None:
            l_pix = self.pixel_criterion(output, self.pixel_target())
            self.losses['l_pix'] = l_pix
            total = total + l_pix
        if self.edge_criterion is not None:
            l_edge = self.edge_criterion(output, self.pixel_target())  # the pixel loss's target (gt_usm or gt)
            self.losses['l_edge'] = l_edge
            total = total + l_edge
        return total

    def train_iter(self, optimizers=None):
        self.require('pixel_criterion', '{name: L1Loss}')
        self.losses.clear()
        self.zero_grad('generator')
        with self.autocast():
            self.output = self.nets['generator'](self.lq)
            l_total = self.generator_losses(self.output)
        self.visual_items['output'] = self.output
        self.backward(l_total)
        self.step('generator')
