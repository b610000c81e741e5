"""Trainer: the training core (common_data/training/trainer.py) run with the PyTorch adapter (engine/backend.py)."""
from common_data.training.options import Options  # noqa: F401  (the trainer's options, imported from here by tools)
from common_data.training.trainer import TrainingCore

from .backend import TorchBackend


class Trainer(TrainingCore):
    __doc__ = TrainingCore.__doc__
    backend_class = TorchBackend
