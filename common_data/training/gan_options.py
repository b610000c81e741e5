"""GANLoss option resolution shared by both backends: BasicSR's ``gan_type`` or PaddleGAN's ``gan_mode``."""
from common_data.errors import ConfigError

GAN_TYPES = ('vanilla', 'lsgan', 'wgan', 'wgan_softplus', 'hinge')
WITH_PENALTY = 'wgangp'  # PaddleGAN's WGAN-GP: the penalty is not added by our models, so the name is refused


def resolve_gan_type(gan_type=None, gan_mode=None):
    """The GAN objective named by ``gan_type`` / ``gan_mode`` (one of GAN_TYPES); ConfigError if unset or unknown."""
    if gan_type is not None and gan_mode is not None and gan_type != gan_mode:
        raise ConfigError(f"GANLoss: gan_type {gan_type!r} and gan_mode {gan_mode!r} disagree; keep one of them")
    name = gan_type if gan_type is not None else gan_mode
    if name is None:
        raise ConfigError(f"GANLoss: set gan_type (or gan_mode) to one of {', '.join(GAN_TYPES)}")
    if name == WITH_PENALTY:
        raise ConfigError("GANLoss: gan_mode wgangp trains WGAN with a gradient penalty, which the ESRGAN models do "
                          "not add; use wgan (the same objective without the penalty), or vanilla / lsgan / hinge")
    if name not in GAN_TYPES:
        raise ConfigError(f"GANLoss: set gan_type (or gan_mode) to one of {', '.join(GAN_TYPES)}, got {name!r}")
    return name
