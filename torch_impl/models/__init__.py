"""Training models for the PyTorch backend: the recipes of common_data/training/recipes.py over its BaseModel.

A config's ``model.name`` is resolved through ``MODELS``.
"""
from common_data.registry import Registry
from common_data.training.recipes import ESRGANRecipe, RealESRGANRecipe, RealESRNetRecipe, SRRecipe

from .base_model import BaseModel

MODELS = Registry("model")


@MODELS.register()
class BaseSRModel(SRRecipe, BaseModel):
    __doc__ = SRRecipe.__doc__


@MODELS.register()
class ESRGAN(ESRGANRecipe, BaseModel):
    __doc__ = ESRGANRecipe.__doc__


@MODELS.register()
class RealESRNet(RealESRNetRecipe, BaseModel):
    __doc__ = RealESRNetRecipe.__doc__


@MODELS.register()
class RealESRGAN(RealESRGANRecipe, BaseModel):
    __doc__ = RealESRGANRecipe.__doc__


def build_model(cfg, where="model"):
    """Build the model named by ``cfg.name`` from the ``model:`` block."""
    return MODELS.build(cfg, where)
