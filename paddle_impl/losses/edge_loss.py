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
import paddle
from paddle import nn
from paddle.nn import functional as F

from common_data.training.edge_kernels import MAG_EPS, check_edge_options, gaussian_kernel, sobel_kernels

from . import LOSSES


def depthwise(x, kernel):
    """Same-size depthwise correlation of (N, C, H, W) with a 2-D kernel, replicate padding."""
    c = x.shape[1]
    k = kernel.shape[-1]
    weight = kernel.reshape([1, 1, k, k]).expand([c, 1, k, k])
    x = F.pad(x, [k // 2] * 4, mode="replicate")
    return F.conv2d(x, weight, groups=c)


@LOSSES.register()
class EdgeLoss(nn.Layer):
    """Sobel-magnitude L1 plus soft-Canny edge-map L1 (see the module docstring for the exact formula)."""

    def __init__(self, loss_weight=1.0, sobel_weight=1.0, canny_weight=1.0, sobel_ksize=3, canny_low=0.1,
                 canny_high=0.2):
        super().__init__()
        check_edge_options(sobel_ksize, canny_low, canny_high)
        self.loss_weight = loss_weight
        self.sobel_weight = sobel_weight
        self.canny_weight = canny_weight
        self.canny_low = canny_low
        self.canny_high = canny_high
        kx, ky = sobel_kernels(sobel_ksize)
        for name, kernel in (("kernel_x", kx), ("kernel_y", ky), ("kernel_gauss", gaussian_kernel())):
            self.register_buffer(name, paddle.to_tensor(kernel), persistable=False)

    def magnitude(self, x):
        gx = depthwise(x, self.kernel_x)
        gy = depthwise(x, self.kernel_y)
        return paddle.sqrt(gx * gx + gy * gy + MAG_EPS)

    def edge_map(self, x):
        mag = self.magnitude(depthwise(x, self.kernel_gauss))
        return paddle.clip((mag - self.canny_low) / (self.canny_high - self.canny_low), 0.0, 1.0)

    def forward(self, pred, target):
        loss = 0
        if self.sobel_weight:
            loss = loss + self.sobel_weight * F.l1_loss(self.magnitude(pred), self.magnitude(target))
        if self.canny_weight:
            loss = loss + self.canny_weight * F.l1_loss(self.edge_map(pred), self.edge_map(target))
        return self.loss_weight * loss
