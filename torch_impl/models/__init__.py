"""Training models; a config's ``model.name`` (e.g. ``ESRGAN``) is resolved through ``MODELS``."""
from common_data.registry import Registry

MODELS = Registry('model')

from . import sr_model, esrgan_model, realesrgan_model  # noqa: E402,F401  (they register themselves)


def build_model(cfg, where='model'):
    """Build the model named by ``cfg.name`` from the ``model:`` block."""
    return MODELS.build(cfg, where)
