"""GANLoss option resolution shared by both backends: BasicSR's ``gan_type`` or PaddleGAN's ``gan_mode``, and the
WGAN-GP gradient penalty's weight."""
from common_data.errors import ConfigError

GAN_TYPES = ('vanilla', 'lsgan', 'wgan', 'wgan_softplus', 'hinge', 'wgangp')
WITH_PENALTY = 'wgangp'  # PaddleGAN's WGAN-GP: wgan's objective + gp_weight * the gradient penalty on D's loss
DEFAULT_GP_WEIGHT = 10.0  # the WGAN-GP paper's lambda


def resolve_gan_type(gan_type=None, gan_mode=None):
    """The GAN objective named by ``gan_type`` / ``gan_mode`` (one of GAN_TYPES); ConfigError if unset or unknown."""
    if gan_type is not None and gan_mode is not None and gan_type != gan_mode:
        raise ConfigError(f"GANLoss: gan_type {gan_type!r} and gan_mode {gan_mode!r} disagree; keep one of them")
    name = gan_type if gan_type is not None else gan_mode
    if name is None:
        raise ConfigError(f"GANLoss: set gan_type (or gan_mode) to one of {', '.join(GAN_TYPES)}")
    if name not in GAN_TYPES:
        raise ConfigError(f"GANLoss: set gan_type (or gan_mode) to one of {', '.join(GAN_TYPES)}, got {name!r}")
    return name


def resolve_gp_weight(gan_type, gp_weight=None):
    """The weight of the gradient penalty the discriminator's loss gets: ``gp_weight``, else 10 for wgangp and 0
    (none) for the others; ConfigError for a negative or non-number weight, or wgangp with 0."""
    if gp_weight is None:
        return DEFAULT_GP_WEIGHT if gan_type == WITH_PENALTY else 0.0
    if isinstance(gp_weight, bool) or not isinstance(gp_weight, (int, float)) or not gp_weight >= 0:
        raise ConfigError(f"GANLoss: gp_weight must be a number >= 0 (the gradient penalty's weight; 0 = none), "
                          f"got {gp_weight!r}")
    if gan_type == WITH_PENALTY and gp_weight == 0:
        raise ConfigError("GANLoss: gan_mode wgangp with gp_weight 0 is plain wgan; set gan_mode: wgan, or gp_weight "
                          "> 0 (10 is the WGAN-GP paper's)")
    return float(gp_weight)
