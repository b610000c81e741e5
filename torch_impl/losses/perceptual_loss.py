"""Perceptual and style loss on VGG features (BasicSR semantics)."""
import torch
from torch import nn
from torch.nn import functional as F

from common_data.errors import ConfigError

from ..archs.vgg_arch import VGGFeatureExtractor
from . import LOSSES

CRITERIA = ('l1', 'l2', 'fro')


def gram_matrix(x):
    """(N, C, H, W) -> (N, C, C) Gram matrix divided by C*H*W."""
    n, c, h, w = x.shape
    f = x.reshape(n, c, h * w)
    return torch.bmm(f, f.transpose(1, 2)) / (c * h * w)


@LOSSES.register()
class PerceptualLoss(nn.Module):
    """``forward(x, gt) -> (percep_loss, style_loss)``, each None when its weight is 0.

    ``layer_weights`` maps VGG layers (``conv5_4`` or PaddleGAN's index ``'34'``) to weights. ``norm_img`` is
    PaddleGAN's name for ``range_norm`` (inputs in [-1, 1]). ``weights_path``: see ``archs/vgg_arch.py``.
    """

    def __init__(self, layer_weights, vgg_type='vgg19', use_input_norm=True, range_norm=False,
                 perceptual_weight=1.0, style_weight=0.0, criterion='l1', weights_path=None, *, norm_img=None):
        super().__init__()
        if criterion not in CRITERIA:
            raise ConfigError(f"PerceptualLoss: criterion must be one of {CRITERIA}, got {criterion!r}")
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

    def _distance(self, a, b):
        if self.criterion == 'l1':
            return F.l1_loss(a, b)
        if self.criterion == 'l2':
            return F.mse_loss(a, b)
        return torch.linalg.norm((a - b).flatten())

    def forward(self, x, gt):
        if self.vgg is None:
            return None, None
        x_feats = self.vgg(x)
        gt_feats = self.vgg(gt.detach())
        percep = style = None
        if self.perceptual_weight > 0:
            percep = sum(self._distance(x_feats[k], gt_feats[k]) * w for k, w in self.layer_weights.items())
            percep = percep * self.perceptual_weight
        if self.style_weight > 0:
            style = sum(self._distance(gram_matrix(x_feats[k]), gram_matrix(gt_feats[k])) * w
                        for k, w in self.layer_weights.items())
            style = style * self.style_weight
        return percep, style
