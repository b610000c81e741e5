"""ESRGAN: the GAN stage (PaddleGAN's esrgan_model.py): pixel + perceptual + relativistic-average GAN loss."""
from common_data.errors import ConfigError
from common_data.training.recipes import ESRGANRecipe

from ..archs import build_arch
from ..losses import build_loss
from . import MODELS
from .sr_model import BaseSRModel


@MODELS.register()
class ESRGAN(ESRGANRecipe, BaseSRModel):
    """Generator step (optimizer of ``generator``), then discriminator step (optimizer of ``discriminator``).

    ``relativistic: true`` (default, ESRGAN and PaddleGAN) uses the relativistic-average GAN form:
    G: (gan(D(gt) - mean D(sr), fake) + gan(D(sr) - mean D(gt), real)) / 2; D: the mirrored pair, each halved.
    ``relativistic: false`` uses the plain GAN loss (G: gan(D(sr), real); D: gan(D(gt), real) + gan(D(sr), fake)).
    Loss keys: l_pix, l_edge, l_percep, l_style, l_g_gan, l_g_fm, l_d_real, l_d_fake, out_d_real, out_d_fake.
    Without a discriminator / gan_criterion it trains the generator alone.
    ``freeze_d_layers`` (FreezeD) keeps the discriminator's first blocks fixed; ``feature_matching_weight`` > 0 adds
    ``l_g_fm``, the L1 between the discriminator's intermediate features of G(lq) and of the real image.
    """

    def __init__(self, generator, discriminator=None, pixel_criterion=None, perceptual_criterion=None,
                 gan_criterion=None, edge_criterion=None, relativistic=True, ema_decay=0.0, pretrain_network_g=None,
                 strict_load_g=True, param_key_g=None, pretrain_network_d=None, strict_load_d=True, param_key_d=None,
                 to_static=None, freeze_d_layers=None,
                 feature_matching_weight=0.0, loss_stages=None):
        super().__init__(generator, pixel_criterion, edge_criterion, ema_decay, pretrain_network_g, strict_load_g,
                         param_key_g, to_static)
        if discriminator:
            self.nets["discriminator"] = build_arch(discriminator, "model.discriminator")
            if pretrain_network_d:
                self.load_pretrained("discriminator", pretrain_network_d, strict_load_d, param_key_d)
        self.perceptual_criterion = (build_loss(perceptual_criterion, "model.perceptual_criterion")
                                     if perceptual_criterion else None)
        self.gan_criterion = build_loss(gan_criterion, "model.gan_criterion") if gan_criterion else None
        if self.gan_criterion is not None and not discriminator:
            raise ConfigError("model.gan_criterion needs model.discriminator (e.g. {name: VGGDiscriminator128})")
        self.relativistic = bool(relativistic)
        self.freeze_discriminator(freeze_d_layers)
        self.set_feature_matching(feature_matching_weight)
        self.set_loss_stages(loss_stages)
