"""``run(cfg, args) -> exit code``: train, resume, or evaluate once with the PyTorch backend (tools/main.py)."""
from common_data.training.run import run_training

from .trainer import Trainer


def run(cfg, args=None):
    """See common_data.training.run.run_training."""
    return run_training(Trainer, cfg, args)
