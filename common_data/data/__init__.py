"""Images, datasets, degradations, the batch sampler and the data-loader workers (numpy, OpenCV)."""
