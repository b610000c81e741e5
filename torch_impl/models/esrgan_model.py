"""ESRGAN: PaddleGAN's GAN stage (VGG-style discriminator, relativistic-average GAN, perceptual + pixel loss)."""
import torch

from common_data.errors import ConfigError

from ..losses.gan_loss import relativistic_g_loss
from . import MODELS
from .sr_model import BaseSRModel


@MODELS.register()
class ESRGAN(BaseSRModel):
    """Generator step then discriminator step per iteration (PaddleGAN's esrgan_model.py).

    With ``relativistic: true`` (default, ESRGAN's form):
      l_g_gan = (gan(D(gt) - mean(D(G(lq))), False) + gan(D(G(lq)) - mean(D(gt)), True)) / 2, D(gt) detached;
      l_d_real = gan(D(gt) - mean(D(fake)), True) / 2, l_d_fake = gan(D(fake) - mean(D(gt)), False) / 2, the other
      side's prediction detached. With ``relativistic: false`` the plain SRGAN form (BasicSR's SRGANModel).
    Without ``gan_criterion`` / ``discriminator`` it trains the generator alone (pixel + perceptual).
    """

    def __init__(self, generator, discriminator=None, pixel_criterion=None, perceptual_criterion=None,
                 gan_criterion=None, edge_criterion=None, relativistic=True, ema_decay=0.0, pretrain_network_g=None,
                 strict_load_g=True, param_key_g=None, pretrain_network_d=None, strict_load_d=True,
                 param_key_d=None, to_static=False):
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

    # targets of each loss (Real-ESRGAN overrides them with the USM-sharpened GT)
    def percep_target(self):
        return self.gt

    def gan_target(self):
        return self.gt

    def update_generator(self):
        return True

    def generator_losses(self, output):
        total = super().generator_losses(output)
        if self.perceptual_criterion is not None:
            l_percep, l_style = self.perceptual_criterion(output, self.percep_target())
            if l_percep is not None:
                self.losses['l_percep'] = l_percep
                total = total + l_percep
            if l_style is not None:
                self.losses['l_style'] = l_style
                total = total + l_style
        if self.gan_criterion is not None:
            net_d = self.net('discriminator')  # frozen here; no gradient sync needed for it
            if self.relativistic:
                with torch.no_grad():
                    real_pred = net_d(self.gan_target())
                fake_pred = net_d(output)
                l_g_gan = relativistic_g_loss(self.gan_criterion, real_pred, fake_pred)
            else:
                fake_pred = net_d(output)
                l_g_gan = self.gan_criterion(fake_pred, True, is_disc=False)
            self.losses['l_g_gan'] = l_g_gan
            total = total + l_g_gan
        return total

    def train_iter(self, optimizers=None):
        if self.pixel_criterion is None and self.perceptual_criterion is None and self.gan_criterion is None:
            raise ConfigError("model: ESRGAN needs at least one of pixel_criterion, perceptual_criterion, "
                              "gan_criterion")
        self.losses.clear()
        has_d = self.gan_criterion is not None
        if has_d:
            self.set_requires_grad(self.net('discriminator'), False)
        if self.update_generator():
            self.zero_grad('generator')
            with self.autocast():
                self.output = self.nets['generator'](self.lq)
                l_total = self.generator_losses(self.output)
            self.backward(l_total)
            self.step('generator')
        else:  # only the discriminator learns in this iteration
            with torch.no_grad(), self.autocast():
                self.output = self.net('generator')(self.lq)
        self.visual_items['output'] = self.output
        if has_d:
            self.set_requires_grad(self.net('discriminator'), True)
            self.discriminator_step(self.output.detach())

    def discriminator_step(self, fake):
        """Real then fake, each its own forward + backward (so DistributedDataParallel syncs each)."""
        net_d, gan, real = self.nets['discriminator'], self.gan_criterion, self.gan_target()
        self.zero_grad('discriminator')
        with self.autocast():
            if self.relativistic:
                with torch.no_grad():
                    fake_ref = self.net('discriminator')(fake)
                real_pred = net_d(real)
                l_d_real = gan(real_pred - fake_ref.mean(), True, is_disc=True) * 0.5
            else:
                real_pred = net_d(real)
                l_d_real = gan(real_pred, True, is_disc=True)
        self.backward(l_d_real)
        with self.autocast():
            fake_pred = net_d(fake.clone())
            if self.relativistic:
                l_d_fake = gan(fake_pred - real_pred.detach().mean(), False, is_disc=True) * 0.5
            else:
                l_d_fake = gan(fake_pred, False, is_disc=True)
        self.backward(l_d_fake)
        self.step('discriminator')
        self.losses['l_d_real'] = l_d_real
        self.losses['l_d_fake'] = l_d_fake
        self.losses['out_d_real'] = real_pred.detach().float().mean()
        self.losses['out_d_fake'] = fake_pred.detach().float().mean()
