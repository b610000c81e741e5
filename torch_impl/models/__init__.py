"""Training models for the PyTorch backend: the recipes of common_data/training/recipes.py over its BaseModel.

A config's ``model.name`` is resolved through ``MODELS``.
"""
from common_data.registry import Registry
from common_data.training.recipes import register_models

from .base_model import BaseModel

MODELS = Registry("model")
_classes = register_models(MODELS, BaseModel, __name__)
BaseSRModel, ESRGAN, RealESRNet, RealESRGAN = (_classes[name] for name in ("BaseSRModel", "ESRGAN", "RealESRNet",
                                                                           "RealESRGAN"))


def build_model(cfg, where="model"):
    """Build the model named by ``cfg.name`` from the ``model:`` block."""
    return MODELS.build(cfg, where)
