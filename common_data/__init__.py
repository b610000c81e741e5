"""Framework-neutral data layer: numpy, scipy and OpenCV only, never paddle or torch.

Sub-modules are imported on demand so that a broken optional piece never breaks the package.
"""
