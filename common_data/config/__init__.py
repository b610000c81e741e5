"""Configs: loading, the PaddleGAN schema with its checks, and the precision choice."""
