"""Framework-neutral inference: seam-free tiling and the image handling around any forward(np)."""
