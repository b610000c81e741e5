"""Perceptual and style loss on VGG features (BasicSR semantics)."""
import paddle
from paddle import nn
from paddle.nn import functional as F

from common_data.errors import ConfigError

from ..archs.vgg_arch import VGGFeatureExtractor
from . import LOSSES

CRITERIA = ("l1", "l2", "fro")


def gram_matrix(x):
    """(N, C, H, W) -> (N, C, C) Gram matrix divided by C*H*W."""
    n, c, h, w = x.shape
    feat = x.reshape([n, c, h * w])
    return paddle.bmm(feat, feat.mT) / (c * h * w)


@LOSSES.register()
class PerceptualLoss(nn.Layer):
    """sum_k w_k * criterion(VGG_k(x), VGG_k(gt)) * perceptual_weight, and the same on Gram matrices * style_weight.

    ``forward(x, gt)`` returns ``(percep_loss, style_loss)``, each None when its weight is 0.
    ``layer_weights`` maps VGG layer names (``conv5_4``) or PaddleGAN's indices (``"34"``) to weights.
    ``norm_img`` is PaddleGAN's name for ``range_norm`` (inputs in [-1, 1]).
    ``weights_path``: see ``archs/vgg_arch.py`` (required; ``"random"`` for tests only).
    """

    def __init__(self, layer_weights, vgg_type="vgg19", use_input_norm=True, range_norm=False, perceptual_weight=1.0,
                 style_weight=0.0, criterion="l1", weights_path=None, *, norm_img=None):
        super().__init__()
        if criterion not in CRITERIA:
            raise ConfigError(f"PerceptualLoss: criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
        if not isinstance(layer_weights, dict) or not layer_weights:
            raise ConfigError("PerceptualLoss: layer_weights must map VGG layers to weights, e.g. {'34': 1.0}")
        self.layer_weights = {str(k): float(v) for k, v in layer_weights.items()}
        self.perceptual_weight = perceptual_weight
        self.style_weight = style_weight
        self.criterion = criterion
        self.vgg = None
        if perceptual_weight > 0 or style_weight > 0:
            self.vgg = VGGFeatureExtractor(
                list(self.layer_weights), vgg_type=vgg_type, use_input_norm=use_input_norm,
                range_norm=range_norm if norm_img is None else norm_img, weights_path=weights_path)

    def distance(self, a, b):
        """``criterion`` between two feature maps (or Gram matrices): mean L1, mean L2 or Frobenius norm."""
        if self.criterion == "l1":
            return F.l1_loss(a, b)
        if self.criterion == "l2":
            return F.mse_loss(a, b)
        return paddle.linalg.vector_norm((a - b).flatten())

    def weighted_sum(self, x_feats, gt_feats, transform):
        """sum_k w_k * distance(transform(x_feats[k]), transform(gt_feats[k])) over ``layer_weights``."""
        total = 0
        for k, w in self.layer_weights.items():
            total = total + self.distance(transform(x_feats[k]), transform(gt_feats[k])) * w
        return total

    def forward(self, x, gt):
        if self.vgg is None:
            return None, None
        x_feats = self.vgg(x)
        gt_feats = self.vgg(gt.detach())
        percep = style = None
        if self.perceptual_weight > 0:
            percep = self.weighted_sum(x_feats, gt_feats, lambda t: t) * self.perceptual_weight
        if self.style_weight > 0:
            style = self.weighted_sum(x_feats, gt_feats, gram_matrix) * self.style_weight
        return percep, style
