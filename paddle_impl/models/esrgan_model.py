"""ESRGAN: the GAN stage (PaddleGAN's esrgan_model.py): pixel + perceptual + relativistic-average GAN loss."""
import paddle

from common_data.errors import ConfigError

from ..archs import build_arch
from ..losses import build_loss
from ..losses.gan_loss import relativistic_d_loss, relativistic_g_loss
from . import MODELS
from .sr_model import BaseSRModel


@MODELS.register()
class ESRGAN(BaseSRModel):
    """Generator step (optimizer of ``generator``), then discriminator step (optimizer of ``discriminator``).

    ``relativistic: true`` (default, ESRGAN and PaddleGAN) uses the relativistic-average GAN form:
    G: (gan(D(gt) - mean D(sr), fake) + gan(D(sr) - mean D(gt), real)) / 2; D: the mirrored pair, each halved.
    ``relativistic: false`` uses the plain GAN loss (G: gan(D(sr), real); D: gan(D(gt), real) + gan(D(sr), fake)).
    Loss keys: l_pix, l_edge, l_percep, l_style, l_g_gan, l_d_real, l_d_fake, out_d_real, out_d_fake.
    Without a discriminator / gan_criterion it trains the generator alone.
    """

    def __init__(self, generator, discriminator=None, pixel_criterion=None, perceptual_criterion=None,
                 gan_criterion=None, edge_criterion=None, relativistic=True, ema_decay=0.0, pretrain_network_g=None,
                 strict_load_g=True, param_key_g=None, pretrain_network_d=None, strict_load_d=True, param_key_d=None,
                 to_static=False):
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

    def generator_losses(self, pix_gt, percep_gt, gan_gt):
        """Sum of the generator's loss terms (recorded in self.losses); the discriminator must be frozen."""
        total = self.pixel_losses(self.output, pix_gt)
        if self.perceptual_criterion is not None:
            l_percep, l_style = self.perceptual_criterion(self.output, percep_gt)
            if l_percep is not None:
                self.losses["l_percep"] = l_percep
                total = total + l_percep
            if l_style is not None:
                self.losses["l_style"] = l_style
                total = total + l_style
        if self.gan_criterion is not None:
            fake_g_pred = self.nets["discriminator"](self.output)
            if self.relativistic:
                real_d_pred = self.nets["discriminator"](gan_gt).detach()
                l_g_gan = relativistic_g_loss(self.gan_criterion, real_d_pred, fake_g_pred)
            else:
                l_g_gan = self.gan_criterion(fake_g_pred, True, is_disc=False)
            self.losses["l_g_gan"] = l_g_gan
            total = total + l_g_gan
        return total

    def discriminator_step(self, gan_gt):
        optimizer = self.optimizer_for("discriminator")
        net_d = self.nets["discriminator"]
        self.set_requires_grad(net_d, True)
        self.zero_grad(optimizer)
        real_d_pred = net_d(gan_gt)
        fake_d_pred = net_d(self.output.detach())
        if self.relativistic:
            l_d_real, l_d_fake = relativistic_d_loss(self.gan_criterion, real_d_pred, fake_d_pred)
        else:
            l_d_real = self.gan_criterion(real_d_pred, True, is_disc=True)
            l_d_fake = self.gan_criterion(fake_d_pred, False, is_disc=True)
        self.backward(l_d_real + l_d_fake)
        self.step(optimizer)
        self.losses["l_d_real"] = l_d_real
        self.losses["l_d_fake"] = l_d_fake
        self.losses["out_d_real"] = paddle.mean(real_d_pred.detach())
        self.losses["out_d_fake"] = paddle.mean(fake_d_pred.detach())

    def train_iter(self, optimizers=None):
        self.losses.clear()
        opt_g = self.optimizer_for("generator")
        has_d = self.gan_criterion is not None
        if has_d:
            self.set_requires_grad(self.nets["discriminator"], False)
        self.zero_grad(opt_g)
        self.output = self.nets["generator"](self.lq)
        self.visual_items["output"] = self.output
        self.backward(self.check_loss(self.generator_losses(self.gt, self.gt, self.gt)))
        self.step(opt_g)
        if has_d:
            self.discriminator_step(self.gt)
