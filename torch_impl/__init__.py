"""PyTorch backend: architectures, losses, models and the trainer (mirrors paddle_impl/ file for file)."""
