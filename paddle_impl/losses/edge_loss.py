"""Edge loss for line-art (anime) SR: L1 on Sobel gradient magnitudes plus L1 on a soft Canny-style edge map.

Exact definition (the torch twin computes the same), per channel, with fixed depthwise kernels and
replicate padding:

    gx, gy   = Sobel derivatives: outer products of ``cv2.getDerivKernels(1, 0 / 0, 1, ksize, normalize=True)``
               (a unit ramp has gradient 1)
    mag(img) = sqrt(gx^2 + gy^2 + 1e-12)
    edge(img)= clip((mag(gauss(img)) - canny_low) / (canny_high - canny_low), 0, 1), gauss = 5x5 outer product of
               ``cv2.getGaussianKernel(5, 1.4)``; the soft threshold replaces Canny's hysteresis and there is no
               non-maximum suppression (it is not differentiable)
    loss     = loss_weight * (sobel_weight * mean|mag(x) - mag(gt)| + canny_weight * mean|edge(x) - edge(gt)|)
"""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from common_data.training.edge_kernels import MAG_EPS, check_edge_options, gaussian_kernel, sobel_kernels

from . import LOSSES


def depthwise(x, kernel):
    """Same-size depthwise correlation of (N, C, H, W) with a 2-D kernel, replicate padding."""
    c = x.shape[1]
    k = kernel.shape[-1]
    weight = kernel.reshape([1, 1, k, k]).expand([c, 1, k, k])
    x = F.pad(x, [k // 2] * 4, mode='replicate')
    return F.conv2d(x, weight, groups=c)


@LOSSES.register()
class EdgeLoss(nn.Layer):
    """Sobel-magnitude L1 plus soft-Canny edge-map L1; see the module docstring for the exact formula."""

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
        self.register_buffer('kx', paddle.to_tensor(kx), persistable=False)
        self.register_buffer('ky', paddle.to_tensor(ky), persistable=False)
        self.register_buffer('gauss', paddle.to_tensor(gaussian_kernel()), persistable=False)

    def magnitude(self, img):
        gx = depthwise(img, self.kx)
        gy = depthwise(img, self.ky)
        return paddle.sqrt(gx * gx + gy * gy + MAG_EPS)

    def edge_map(self, img):
        mag = self.magnitude(depthwise(img, self.gauss))
        return paddle.clip((mag - self.canny_low) / (self.canny_high - self.canny_low), 0.0, 1.0)

    def forward(self, pred, target):
        loss = 0
        if self.sobel_weight:
            loss = loss + self.sobel_weight * F.l1_loss(self.magnitude(pred), self.magnitude(target))
        if self.canny_weight:
            loss = loss + self.canny_weight * F.l1_loss(self.edge_map(pred), self.edge_map(target))
        return self.loss_weight * loss
