"""ESRGAN's relativistic-average GAN form and the feature-matching loss, written once on tensor methods that paddle
and torch share.

ESRGAN (and PaddleGAN's ``esrgan_model.py``, BasicSR's ``ESRGANModel``) with a ``GANLoss`` ``gan``:
  G: (gan(D(gt) - mean D(sr), False) + gan(D(sr) - mean D(gt), True)) / 2, D(gt) detached;
  D: gan(D(gt) - mean D(sr), True) / 2 and gan(D(sr) - mean D(gt), False) / 2, the other side detached.
"""


def relativistic_g_loss(gan, real_pred, fake_pred):
    """The generator's relativistic loss; ``real_pred`` is detached here."""
    real_pred = real_pred.detach()
    l_real = gan(real_pred - fake_pred.mean(), False, is_disc=False)
    l_fake = gan(fake_pred - real_pred.mean(), True, is_disc=False)
    return (l_real + l_fake) / 2


def relativistic_d_real(gan, real_pred, fake_ref):
    """The discriminator's real half: gan(D(gt) - mean D(sr), True) / 2, ``fake_ref`` detached."""
    return gan(real_pred - fake_ref.detach().mean(), True, is_disc=True) * 0.5


def relativistic_d_fake(gan, fake_pred, real_ref):
    """The discriminator's fake half: gan(D(sr) - mean D(gt), False) / 2, ``real_ref`` detached."""
    return gan(fake_pred - real_ref.detach().mean(), False, is_disc=True) * 0.5


def feature_matching_loss(real_feats, fake_feats):
    """Feature matching (pix2pixHD, traiNNer): the mean over the discriminator's intermediate layers of the mean
    absolute difference between the features of the fake and of the real image, the real side detached:
    ``sum_l mean|F_l(fake) - F_l(real)| / L``."""
    if len(real_feats) != len(fake_feats) or not real_feats:
        raise ValueError(f"feature matching needs the same non-empty list of layers on both sides, got "
                         f"{len(real_feats)} and {len(fake_feats)}")
    total = 0.0
    for real, fake in zip(real_feats, fake_feats):
        total = total + (fake - real.detach()).abs().mean()
    return total / len(real_feats)
