"""Losses for the Paddle backend; a config's ``name:`` (e.g. ``PerceptualLoss``) is resolved through ``LOSSES``."""
from common_data.registry import Registry

LOSSES = Registry("loss")

from . import pixel_loss, gan_loss, perceptual_loss, edge_loss  # noqa: E402,F401  (they register themselves)


def build_loss(cfg, where=None):
    """Build a loss from a config mapping such as ``{"name": "L1Loss", "loss_weight": 1.0}``; ``where`` names the
    config key in errors."""
    return LOSSES.build(cfg, where)
