"""Losses for the Paddle backend, resolved by a config's ``name:`` through ``LOSSES``."""
from common_data.registry import Registry

LOSSES = Registry('loss')

from . import pixel_loss, gan_loss, perceptual_loss, edge_loss  # noqa: E402,F401  (they register themselves)


def build_loss(cfg, where=None):
    """Build a loss from a config block such as ``{'name': 'L1Loss', 'loss_weight': 1.0}``."""
    return LOSSES.build(cfg, where)
