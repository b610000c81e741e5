"""PaddlePaddle backend: architectures (``archs``), losses (``losses``), models and the training engine.

Mirrors ``torch_impl`` file for file; only framework differences separate the two trees.
"""
