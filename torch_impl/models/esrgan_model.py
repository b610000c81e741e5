"""ESRGAN: PaddleGAN's GAN stage (VGG-style discriminator, relativistic-average GAN, perceptual + pixel loss)."""
from common_data.errors import ConfigError
from common_data.training.recipes import ESRGANRecipe

from . import MODELS
from .sr_model import BaseSRModel


@MODELS.register()
class ESRGAN(ESRGANRecipe, BaseSRModel):
    """Generator step then discriminator step per iteration (PaddleGAN's esrgan_model.py).

    With ``relativistic: true`` (default, ESRGAN's form):
      l_g_gan = (gan(D(gt) - mean(D(G(lq))), False) + gan(D(G(lq)) - mean(D(gt)), True)) / 2, D(gt) detached;
      l_d_real = gan(D(gt) - mean(D(fake)), True) / 2, l_d_fake = gan(D(fake) - mean(D(gt)), False) / 2, the other
      side's prediction detached. With ``relativistic: false`` the plain SRGAN form (BasicSR's SRGANModel).
    Without ``gan_criterion`` / ``discriminator`` it trains the generator alone (pixel + perceptual).
    ``freeze_d_layers`` (FreezeD) keeps the discriminator's first blocks fixed; ``feature_matching_weight`` > 0 adds
    ``l_g_fm``, the L1 between the discriminator's intermediate features of G(lq) and of the real image.
    """

    def __init__(self, generator, discriminator=None, pixel_criterion=None, perceptual_criterion=None,
                 gan_criterion=None, edge_criterion=None, relativistic=True, ema_decay=0.0, pretrain_network_g=None,
                 strict_load_g=True, param_key_g=None, pretrain_network_d=None, strict_load_d=True,
                 param_key_d=None, to_static=None, freeze_d_layers=None,
                 feature_matching_weight=0.0, loss_stages=None):
        super().__init__(generator, pixel_criterion, edge_criterion, ema_decay, pretrain_network_g, strict_load_g,
                         param_key_g, to_static)
        if gan_criterion and not discriminator:
            raise ConfigError("model.discriminator is missing: gan_criterion needs one, e.g. "
                              "{name: VGGDiscriminator128, in_channels: 3, num_feat: 64}")
        if discriminator:
            self.build_net('discriminator', discriminator, 'model.discriminator')
            if pretrain_network_d:
                self.load_pretrained('discriminator', pretrain_network_d, strict_load_d, param_key_d,
                                     'model.pretrain_network_d')
        self.perceptual_criterion = self.build_criterion(perceptual_criterion, 'model.perceptual_criterion')
        self.gan_criterion = self.build_criterion(gan_criterion, 'model.gan_criterion')
        self.relativistic = bool(relativistic)
        self.freeze_discriminator(freeze_d_layers)
        self.set_feature_matching(feature_matching_weight)
        self.set_loss_stages(loss_stages)
