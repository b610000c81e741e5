"""Edge loss for line art: L1 between Sobel gradient magnitudes plus L1 between soft Canny-style edge maps.

Exact definition (both backends compute the same numbers), per channel, with fixed kernels from OpenCV:
  grad(x)  = Sobel x / y derivatives, kernels = outer products of ``cv2.getDerivKernels(1, 0 / 0, 1, ksize,
             normalize=True)`` (a unit ramp gives gradient 1), replicate padding, ``mag = sqrt(gx^2 + gy^2 + 1e-12)``
  sobel    = mean |mag(out) - mag(gt)|
  edges(x) = clip((mag(gauss(x)) - low) / (high - low), 0, 1), gauss = 5x5 ``cv2.getGaussianKernel(5, 1.4)``
             outer product, replicate padding; the soft threshold replaces Canny's hysteresis, and there is no
             non-maximum suppression (it is not differentiable)
  canny    = mean |edges(out) - edges(gt)|
  loss     = loss_weight * (sobel_weight * sobel + canny_weight * canny)
"""
import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from common_data.errors import ConfigError

from . import LOSSES

GAUSS_KSIZE = 5
GAUSS_SIGMA = 1.4
MAG_EPS = 1e-12


def sobel_kernels(ksize):
    """(kx, ky) float32 2-D Sobel kernels of size ``ksize`` normalised so a unit ramp has gradient 1."""
    kernels = []
    for dx, dy in ((1, 0), (0, 1)):
        kx, ky = cv2.getDerivKernels(dx, dy, ksize, normalize=True, ktype=cv2.CV_64F)
        kernels.append(np.outer(ky.ravel(), kx.ravel()).astype(np.float32))
    return kernels


def gaussian_kernel(ksize=GAUSS_KSIZE, sigma=GAUSS_SIGMA):
    g = cv2.getGaussianKernel(ksize, sigma, ktype=cv2.CV_64F).ravel()
    return np.outer(g, g).astype(np.float32)


@LOSSES.register()
class EdgeLoss(nn.Module):
    """Sobel-magnitude L1 plus soft-Canny edge-map L1 (see the module docstring for the exact formula)."""

    def __init__(self, loss_weight=1.0, sobel_weight=1.0, canny_weight=1.0, sobel_ksize=3, canny_low=0.1,
                 canny_high=0.2):
        super().__init__()
        if sobel_ksize not in (3, 5, 7):
            raise ConfigError(f"EdgeLoss: sobel_ksize must be 3, 5 or 7, got {sobel_ksize!r}")
        if not canny_high > canny_low:
            raise ConfigError(f"EdgeLoss: canny_high ({canny_high}) must be greater than canny_low ({canny_low})")
        self.loss_weight = loss_weight
        self.sobel_weight = sobel_weight
        self.canny_weight = canny_weight
        self.canny_low = canny_low
        self.canny_high = canny_high
        kx, ky = sobel_kernels(sobel_ksize)
        self.register_buffer('kernel_x', torch.from_numpy(kx)[None, None], persistent=False)
        self.register_buffer('kernel_y', torch.from_numpy(ky)[None, None], persistent=False)
        self.register_buffer('kernel_gauss', torch.from_numpy(gaussian_kernel())[None, None], persistent=False)

    @staticmethod
    def _filter(x, kernel):
        """Depthwise 'same' correlation with replicate padding."""
        c = x.shape[1]
        k = kernel.shape[-1]
        x = F.pad(x, [k // 2] * 4, mode='replicate')
        return F.conv2d(x, kernel.to(x.dtype).expand(c, 1, k, k), groups=c)

    def magnitude(self, x):
        gx = self._filter(x, self.kernel_x)
        gy = self._filter(x, self.kernel_y)
        return torch.sqrt(gx * gx + gy * gy + MAG_EPS)

    def edge_map(self, x):
        mag = self.magnitude(self._filter(x, self.kernel_gauss))
        return torch.clamp((mag - self.canny_low) / (self.canny_high - self.canny_low), 0.0, 1.0)

    def forward(self, pred, target):
        loss = pred.new_zeros(())
        if self.sobel_weight:
            loss = loss + self.sobel_weight * F.l1_loss(self.magnitude(pred), self.magnitude(target))
        if self.canny_weight:
            loss = loss + self.canny_weight * F.l1_loss(self.edge_map(pred), self.edge_map(target))
        return self.loss_weight * loss
