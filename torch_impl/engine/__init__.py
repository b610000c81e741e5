"""Training engine for the PyTorch backend: schedulers, optimizers, data loading, checkpoints, the trainer."""
