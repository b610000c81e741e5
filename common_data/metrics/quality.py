"""PSNR and SSIM as PaddleGAN (ppgan/metrics/psnr_ssim.py) and BasicSR (basicsr/metrics/psnr_ssim.py) compute them.

Images are in [0, 255] (any dtype). ``test_y_channel`` compares the BT.601 luma
``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``; ``color_order`` says whether the channels are
``rgb`` (PaddleGAN's convention) or ``bgr`` (BasicSR's). SSIM uses the 11x11 Gaussian window with
sigma 1.5 (OpenCV filter2D) and the valid region only, averaged over channels.
"""
import cv2
import numpy as np

from common_data.errors import ConfigError, DataError
from common_data.registry import Registry

METRICS = Registry("metric")  # framework-neutral metrics; a backend keeps its own (build_metrics)
FRAMEWORK_METRICS = ("LPIPSMetric",)
Y_WEIGHTS_RGB = np.array([65.481, 128.553, 24.966]) / 255.0
Y_OFFSET = 16.0


def reorder_image(img, input_order="HWC"):
    """Return HxWxC: CHW is transposed, HxW gets a channel axis."""
    if input_order not in ("HWC", "CHW"):
        raise ConfigError(f"input_order must be 'HWC' or 'CHW', got {input_order!r}")
    img = np.asarray(img)
    if img.ndim == 2:
        return img[..., None]
    return img.transpose(1, 2, 0) if input_order == "CHW" else img


def to_y_channel(img, color_order="rgb"):
    """HxWx3 in [0, 255] -> HxWx1 BT.601 Y (float64, not rounded); one-channel images are returned as they are."""
    if color_order not in ("rgb", "bgr"):
        raise ConfigError(f"color_order must be 'rgb' or 'bgr', got {color_order!r}")
    img = np.asarray(img, np.float64)
    if img.ndim == 3 and img.shape[2] == 3:
        weights = Y_WEIGHTS_RGB if color_order == "rgb" else Y_WEIGHTS_RGB[::-1]
        img = (img @ weights + Y_OFFSET)[..., None]
    return img


def _prepare(img1, img2, crop_border, input_order, test_y_channel, color_order):
    img1, img2 = np.asarray(img1), np.asarray(img2)
    if img1.shape != img2.shape:
        raise DataError(f"cannot compare images of different shapes {img1.shape} and {img2.shape}; "
                        f"the SR output must have the GT's size")
    img1 = reorder_image(img1, input_order).astype(np.float64)
    img2 = reorder_image(img2, input_order).astype(np.float64)
    if crop_border:
        img1 = img1[crop_border:-crop_border, crop_border:-crop_border]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border]
    if test_y_channel:
        img1, img2 = to_y_channel(img1, color_order), to_y_channel(img2, color_order)
    return img1, img2


def calculate_psnr(img1, img2, crop_border, input_order="HWC", test_y_channel=False, color_order="rgb"):
    """PSNR in dB for peak 255 over the image without ``crop_border`` pixels per edge; inf if equal."""
    img1, img2 = _prepare(img1, img2, crop_border, input_order, test_y_channel, color_order)
    mse = np.mean((img1 - img2) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(255.0 ** 2 / mse))


def ssim_window():
    kernel = cv2.getGaussianKernel(11, 1.5)
    return kernel @ kernel.T


def _ssim_one_channel(img1, img2):
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    window = ssim_window()

    def blur(x):
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]

    mu1, mu2 = blur(img1), blur(img2)
    var1 = blur(img1 ** 2) - mu1 ** 2
    var2 = blur(img2 ** 2) - mu2 ** 2
    cov = blur(img1 * img2) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * cov + c2)) / ((mu1 ** 2 + mu2 ** 2 + c1) * (var1 + var2 + c2))
    return ssim_map.mean()


def calculate_ssim(img1, img2, crop_border, input_order="HWC", test_y_channel=False, color_order="rgb"):
    """SSIM (Wang et al. 2004, the MATLAB reference's Gaussian window) averaged over channels."""
    img1, img2 = _prepare(img1, img2, crop_border, input_order, test_y_channel, color_order)
    return float(np.mean([_ssim_one_channel(img1[..., c], img2[..., c]) for c in range(img1.shape[2])]))


@METRICS.register()
class PSNR:
    """PaddleGAN-style accumulating metric: ``update(preds, gts)`` with uint8 HWC RGB arrays (or lists)."""

    func = staticmethod(calculate_psnr)

    def __init__(self, crop_border, input_order="HWC", test_y_channel=False, color_order="rgb"):
        self.crop_border = crop_border
        self.input_order = input_order
        self.test_y_channel = test_y_channel
        self.color_order = color_order
        self.reset()

    def reset(self):
        self.results = []

    def update(self, preds, gts, is_seq=False):
        """Add one value per (pred, gt) pair, or with ``is_seq`` one mean value for the whole sequence."""
        preds = preds if isinstance(preds, (list, tuple)) else [preds]
        gts = gts if isinstance(gts, (list, tuple)) else [gts]
        values = [self.func(p, g, self.crop_border, self.input_order, self.test_y_channel, self.color_order)
                  for p, g in zip(preds, gts)]
        self.results += [float(np.mean(values))] if is_seq else values

    def accumulate(self):
        """Mean over all updates (0.0 when there were none)."""
        return float(np.mean(self.results)) if self.results else 0.0

    def name(self):
        return type(self).__name__


@METRICS.register()
class SSIM(PSNR):
    func = staticmethod(calculate_ssim)


def build_metrics(metrics_cfg, where="validate.metrics", backend_metrics=None):
    """``{label: {name: PSNR, crop_border: 4, ...}}`` (PaddleGAN's ``validate.metrics``) -> {label: metric}.

    ``backend_metrics`` is the running backend's registry of metrics that need its framework (LPIPSMetric's
    forward pass): a name there is built from it, so which backend was imported first never matters."""
    if not metrics_cfg:
        return {}
    if not isinstance(metrics_cfg, dict):
        raise ConfigError(f"{where}: expected a mapping of metric label -> {{name: PSNR, ...}}, got {metrics_cfg!r}")
    built = {}
    for label, cfg in metrics_cfg.items():
        name = cfg.get("name") if isinstance(cfg, dict) else None
        if backend_metrics is not None and name in backend_metrics:
            built[label] = backend_metrics.build(cfg, where=f"{where}.{label}")
        elif name in FRAMEWORK_METRICS:
            raise ConfigError(f"{where}.{label}: {name} runs on a framework; it is measured by the trainers' "
                              f"validation (tools/main.py), not here")
        else:
            built[label] = METRICS.build(cfg, where=f"{where}.{label}")
    return built
