"""Which GT each of Real-ESRGAN's losses compares against, decided once for both backends' models."""
from common_data.errors import ConfigError


def usm_or_gt(gt, gt_usm, use_usm, key):
    """``gt_usm`` (the USM-sharpened GT of RealESRGANDataset) when the model's ``key`` option is true, else ``gt``.

    ``key`` true with no ``gt_usm`` in the batch (e.g. SRDataset data) is an error, not a silent switch to ``gt``.
    """
    if not use_usm:
        return gt
    if gt_usm is None:
        raise ConfigError(f"model.{key} is true but the training data has no gt_usm; use dataset.train.name: "
                          f"RealESRGANDataset or set -o model.{key}=false")
    return gt_usm


def check_realesrgan_options(gan_criterion, net_d_iters):
    """RealESRGAN's own options: a ``gan_criterion`` (the stage is a GAN) and ``net_d_iters`` >= 1."""
    if not gan_criterion:
        raise ConfigError("model.gan_criterion is missing for RealESRGAN: add {name: GANLoss, gan_mode: vanilla, "
                          "loss_weight: 0.1}")
    if isinstance(net_d_iters, bool) or int(net_d_iters) < 1:
        raise ConfigError(f"model.net_d_iters must be >= 1, got {net_d_iters}")
