"""Training models for the PyTorch backend: the recipes of common_data/training/recipes.py over its BaseModel;
``build_model(cfg)`` builds the one a config's ``model.name`` names."""
from functools import partial

from common_data.training.recipes import MODEL_RECIPES, model_registry

from .base_model import BaseModel

MODELS = model_registry(BaseModel, __name__)
BaseSRModel, ESRGAN, RealESRNet, RealESRGAN = map(MODELS.get, MODEL_RECIPES)
build_model = partial(MODELS.build, where="model")
