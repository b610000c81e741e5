"""The fixed kernels and checks of the EdgeLoss (``losses/edge_loss.py`` of both backends), from OpenCV."""
import cv2
import numpy as np

from common_data.errors import ConfigError

MAG_EPS = 1e-12
GAUSS_KSIZE, GAUSS_SIGMA = 5, 1.4


def check_edge_options(sobel_ksize, canny_low, canny_high):
    """ConfigError unless ``sobel_ksize`` is 3, 5 or 7 and ``canny_high > canny_low``."""
    if sobel_ksize not in (3, 5, 7):
        raise ConfigError(f"EdgeLoss: sobel_ksize must be 3, 5 or 7, got {sobel_ksize!r}")
    if not canny_high > canny_low:
        raise ConfigError(f"EdgeLoss: canny_high ({canny_high}) must be greater than canny_low ({canny_low})")


def sobel_kernels(ksize):
    """(kx, ky) float32 2-D Sobel kernels of size ``ksize`` normalised so a unit ramp has gradient 1."""
    kernels = []
    for dx, dy in ((1, 0), (0, 1)):
        kx, ky = cv2.getDerivKernels(dx, dy, ksize, normalize=True, ktype=cv2.CV_64F)
        kernels.append(np.outer(ky.ravel(), kx.ravel()).astype(np.float32))
    return kernels


def gaussian_kernel(ksize=GAUSS_KSIZE, sigma=GAUSS_SIGMA):
    """float32 2-D Gaussian: the outer product of ``cv2.getGaussianKernel(ksize, sigma)`` with itself."""
    g = cv2.getGaussianKernel(ksize, sigma, ktype=cv2.CV_64F).ravel()
    return np.outer(g, g).astype(np.float32)
