"""Training engine for the Paddle backend: schedulers, optimizers, data loading, checkpoints, the trainer."""
