"""Perceptual and style loss on VGG features (BasicSR semantics)."""
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from common_data.errors import ConfigError

from ..archs.vgg_arch import VGGFeatureExtractor
from . import LOSSES

CRITERIA = ('l1', 'l2', 'fro')


def gram_matrix(x):
    """(N, C, H, W) -> (N, C, C) Gram matrix divided by C*H*W."""
    n, c, h, w = x.shape
    feat = x.reshape([n, c, h * w])
    return paddle.bmm(feat, feat.transpose([0, 2, 1])) / (c * h * w)


@LOSSES.register()
class PerceptualLoss(nn.Layer):
    """sum_k w_k * criterion(VGG_k(x), VGG_k(gt)) * perceptual_weight, and the same on Gram matrices * style_weight.

    ``layer_weights`` maps VGG layer names ('conv5_4') or PaddleGAN indices ('34') to weights.
    ``forward(x, gt)`` returns ``(percep_loss, style_loss)``, each None when its weight is 0.
    ``norm_img`` is PaddleGAN's name for ``range_norm`` (inputs in [-1, 1]).
    ``weights_path``: see ``archs/vgg_arch.py`` (required; 'random' for tests only).
    """

    def __init__(self, layer_weights, vgg_type='vgg19', use_input_norm=True, range_norm=False, perceptual_weight=1.0,
                 style_weight=0.0, criterion='l1', weights_path=None, *, norm_img=None):
        super().__init__()
        if criterion not in CRITERIA:
            raise ConfigError(f"PerceptualLoss: criterion must be one of {', '.join(CRITERIA)}, got {criterion!r}")
        if not isinstance(layer_weights, dict) or not layer_weights:
            raise ConfigError("PerceptualLoss: layer_weights must map VGG layers to weights, e.g. {'34': 1.0}")
        self.layer_weights = {str(k): float(v) for k, v in layer_weights.items()}
        self.perceptual_weight = perceptual_weight
        self.style_weight = style_weight
        self.criterion_type = criterion
        self.vgg = None
        if perceptual_weight > 0 or style_weight > 0:
            self.vgg = VGGFeatureExtractor(
                list(self.layer_weights), vgg_type=vgg_type, use_input_norm=use_input_norm,
                range_norm=range_norm if norm_img is None else norm_img, weights_path=weights_path)

    def distance(self, a, b):
        if self.criterion_type == 'fro':
            return paddle.linalg.vector_norm((a - b).flatten(), p=2)
        if self.criterion_type == 'l2':
            return F.mse_loss(a, b)
        return F.l1_loss(a, b)

    def weighted_sum(self, x_feats, gt_feats, transform):
        total = 0
        for k, w in self.layer_weights.items():
            total = total + self.distance(transform(x_feats[k]), transform(gt_feats[k])) * w
        return total

    def forward(self, x, gt):
        if self.vgg is None:
            return None, None
        x_feats = self.vgg(x)
        gt_feats = self.vgg(gt.detach())
        percep = None
        if self.perceptual_weight > 0:
            percep = self.weighted_sum(x_feats, gt_feats, lambda t: t) * self.perceptual_weight
        style = None
        if self.style_weight > 0:
            style = self.weighted_sum(x_feats, gt_feats, gram_matrix) * self.style_weight
        return percep, style
