"""GAN losses (BasicSR semantics) and the WGAN-GP gradient penalty; ESRGAN's relativistic-average form is
framework-neutral (common_data/training/gan_forms.py) and named by the model's ``relativistic`` option."""
import paddle
from paddle import nn
from paddle.nn import functional as F

from common_data.training.gan_options import resolve_gan_type, resolve_gp_weight

from . import LOSSES


@LOSSES.register()
class GANLoss(nn.Layer):
    """GAN objective on discriminator logits: ``forward(pred, target_is_real, is_disc=False)``.

    ``gan_type`` (BasicSR) or ``gan_mode`` (PaddleGAN): vanilla (BCE with logits), lsgan (MSE to the label),
    wgan (-mean / +mean), wgan_softplus (softplus(-x) / softplus(x), mean), hinge (discriminator: relu(1 -/+ x),
    mean; generator: -mean(x)); wgangp = wgan + ``gp_weight`` (default 10) times the gradient penalty, which the
    models add to the discriminator's loss (``penalty``); ``gp_weight`` > 0 adds it to any other objective too.
    ``loss_weight`` scales the generator's loss only; a discriminator's loss is never weighted.
    """

    def __init__(self, gan_type=None, real_label_val=1.0, fake_label_val=0.0, loss_weight=1.0, gan_mode=None,
                 gp_weight=None):
        super().__init__()
        self.gan_type = resolve_gan_type(gan_type, gan_mode)
        self.gp_weight = resolve_gp_weight(self.gan_type, gp_weight)
        self.real_label_val = real_label_val
        self.fake_label_val = fake_label_val
        self.loss_weight = loss_weight

    def forward(self, pred, target_is_real, is_disc=False):
        if self.gan_type == "vanilla":
            label = paddle.full_like(pred, self.real_label_val if target_is_real else self.fake_label_val)
            loss = F.binary_cross_entropy_with_logits(pred, label)
        elif self.gan_type == "lsgan":
            label = paddle.full_like(pred, self.real_label_val if target_is_real else self.fake_label_val)
            loss = F.mse_loss(pred, label)
        elif self.gan_type in ("wgan", "wgangp"):
            loss = -pred.mean() if target_is_real else pred.mean()
        elif self.gan_type == "wgan_softplus":
            loss = F.softplus(-pred).mean() if target_is_real else F.softplus(pred).mean()
        elif is_disc:  # hinge, discriminator
            loss = F.relu(1 - pred).mean() if target_is_real else F.relu(1 + pred).mean()
        else:  # hinge, generator
            loss = -pred.mean()
        return loss if is_disc else loss * self.loss_weight

    def penalty(self, discriminator, real, fake):
        """``gp_weight`` * the WGAN-GP gradient penalty of ``discriminator`` between ``real`` and ``fake`` (a
        discriminator loss: ``loss_weight`` does not apply)."""
        return gradient_penalty(discriminator, real, fake) * self.gp_weight


def gradient_penalty(discriminator, real, fake):
    """WGAN-GP penalty (BasicSR / PaddleGAN): mean over pixels of (||dD/dx||_2 over channels - 1)^2 at random
    interpolates x of ``real`` and ``fake``."""
    alpha = paddle.rand([real.shape[0]] + [1] * (real.ndim - 1), dtype=real.dtype)
    interp = alpha * real.detach() + (1 - alpha) * fake.detach()
    interp.stop_gradient = False
    pred = discriminator(interp)
    grad = paddle.grad(
        outputs=pred, inputs=interp, grad_outputs=paddle.ones_like(pred), create_graph=True, retain_graph=True)[0]
    return ((grad.norm(p=2, axis=1) - 1) ** 2).mean()
