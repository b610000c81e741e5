"""Real-ESRGAN's degradations in numpy + OpenCV: resize, noise, JPEG, blur, USM and the second-order pipeline.

Images are float32 RGB ``HxWx3`` in [0, 1]. Every random function takes a ``numpy.random.Generator`` ``rng``.
Real-ESRGAN runs these steps on the GPU in ``RealESRNetModel.feed_data``; here they run per item in the data workers:
``F.interpolate`` -> ``cv2.resize``, ``DiffJPEG`` -> ``cv2.imencode``/``imdecode``, ``filter2D`` -> ``cv2.filter2D``
(reflect-101 border, as torch's ``reflect`` pad), ``USMSharp``'s 51x51 convolution -> two 51-tap 1-D passes.

``degrade(gt, opt, rng, scale)`` runs a named preset (``opt['preset']``, default ``realesrgan_default``) whose options
are that preset's defaults updated with ``opt``; an option the preset does not use raises ``ConfigError``.
"""
import copy
import difflib
import functools

import cv2
import numpy as np
from scipy import special

from common_data.errors import ConfigError
from common_data.data.kernels import KERNEL_TYPES, random_blur_kernel, random_final_sinc_kernel

RESIZE_MODES = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC}
_ALL_KERNELS = list(KERNEL_TYPES)

# Real-ESRGAN options/train_realesrnet_x4plus.yml (dataset and model sections) and their meaning.
DEFAULTS = {
    # first degradation: blur kernel
    "kernel_list": _ALL_KERNELS,
    "kernel_prob": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    "blur_kernel_size": 21,
    "sinc_prob": 0.1,
    "blur_sigma": [0.2, 3],
    "betag_range": [0.5, 4],
    "betap_range": [1, 2],
    # second degradation: blur kernel
    "kernel_list2": _ALL_KERNELS,
    "kernel_prob2": [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    "blur_kernel_size2": 21,
    "sinc_prob2": 0.1,
    "blur_sigma2": [0.2, 1.5],
    "betag_range2": [0.5, 4],
    "betap_range2": [1, 2],
    # last stage: sinc filter (ringing / overshoot)
    "final_sinc_prob": 0.8,
    # first degradation: resize, noise, JPEG
    "resize_prob": [0.2, 0.7, 0.1],  # up, down, keep
    "resize_range": [0.15, 1.5],
    "gaussian_noise_prob": 0.5,
    "noise_range": [1, 30],  # sigma in 0-255 units
    "poisson_scale_range": [0.05, 3],
    "gray_noise_prob": 0.4,
    "jpeg_range": [30, 95],
    # second degradation
    "second_blur_prob": 0.8,
    "resize_prob2": [0.3, 0.4, 0.3],  # up, down, keep
    "resize_range2": [0.3, 1.2],
    "gaussian_noise_prob2": 0.5,
    "noise_range2": [1, 25],
    "poisson_scale_range2": [0.05, 2.5],
    "gray_noise_prob2": 0.4,
    "jpeg_range2": [30, 95],
    "gt_size": 256,
}

# The anime user's four schemes (resize only; jpg + bad resize + blur + ringing + second jpg; jpg only; default).
# The values of the three lighter presets are ours: Real-ESRGAN has no such presets.
PRESETS = {
    "realesrgan_default": DEFAULTS,
    "resize_only": {"resize_modes": ["bicubic", "area"], "gt_size": 256},
    "jpeg_only": {"resize_modes": ["bicubic", "area"], "jpeg_range": [30, 95], "gt_size": 256},
    "anime_light": {
        "jpeg_range": [60, 95],  # the source was a JPEG
        "resize_prob": [0.3, 0.4, 0.3],  # improper resize: up, down, keep
        "resize_range": [0.5, 1.5],
        "resize_modes": ["area", "bilinear", "bicubic"],
        "blur_prob": 0.5,  # mild blur
        "kernel_list": ["iso", "aniso"],
        "kernel_prob": [0.7, 0.3],
        "blur_kernel_size": 11,
        "sinc_prob": 0.0,
        "blur_sigma": [0.2, 1.5],
        "betag_range": [0.5, 4],
        "betap_range": [1, 2],
        "final_sinc_prob": 0.5,  # ringing
        "jpeg_range2": [70, 95],  # saved again as JPEG
        "gt_size": 256,
    },
}


# ----------------------------------------------------------------------------------------------- options
def _range_check(key, value, low=None, high=None):
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value)
    if not ok or value[0] > value[1] or (low is not None and value[0] < low) or (high is not None and value[1] > high):
        bounds = f" within [{low}, {high}]" if low is not None else ""
        raise ConfigError(f"degradation option {key}: expected [low, high] with low <= high{bounds}, got {value!r}")


def _check(key, value, opts):
    """Raise ConfigError naming ``key`` if ``value`` is not valid."""
    if key.startswith("kernel_list"):
        bad = [k for k in value if k not in KERNEL_TYPES] if isinstance(value, (list, tuple)) else [value]
        if bad or not value:
            raise ConfigError(f"degradation option {key}: unknown kernel types {bad}; use some of {list(KERNEL_TYPES)}")
    elif key.startswith("kernel_prob"):
        names = opts.get(key.replace("prob", "list"), [])
        if not isinstance(value, (list, tuple)) or len(value) != len(names) or min(value) < 0 or sum(value) <= 0:
            raise ConfigError(f"degradation option {key}: expected {len(names)} non-negative weights (one per "
                              f"{key.replace('prob', 'list')} entry), got {value!r}")
    elif key.startswith("resize_prob"):
        if not isinstance(value, (list, tuple)) or len(value) != 3 or min(value) < 0 or sum(value) <= 0:
            raise ConfigError(f"degradation option {key}: expected 3 non-negative weights [up, down, keep], "
                              f"got {value!r}")
    elif key == "resize_modes":
        if not value or any(m not in RESIZE_MODES for m in value):
            raise ConfigError(f"degradation option {key}: use some of {list(RESIZE_MODES)}, got {value!r}")
    elif key.startswith("blur_kernel_size"):
        if not isinstance(value, int) or value < 7 or value % 2 == 0:
            raise ConfigError(f"degradation option {key}: expected an odd integer >= 7, got {value!r}")
    elif key == "gt_size":
        if not isinstance(value, int) or value <= 0:
            raise ConfigError(f"degradation option {key}: expected a positive integer, got {value!r}")
    elif key.startswith("jpeg_range"):
        _range_check(key, value, 1, 100)
    elif key.startswith("resize_range"):
        _range_check(key, value, 1e-3, None)
    elif key.endswith("_prob") or key[:-1].endswith("_prob"):
        if not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ConfigError(f"degradation option {key}: expected a probability in [0, 1], got {value!r}")
    else:  # noise_range, poisson_scale_range, blur_sigma, betag_range, betap_range (and their *2)
        _range_check(key, value, 0, None)


class ResolvedOptions(dict):
    """Options already merged with their preset's defaults and validated (``degrade`` takes them as they are)."""


def resolve_options(opt=None):
    """The preset's defaults updated with ``opt`` (validated); the result carries ``preset``."""
    if isinstance(opt, ResolvedOptions):
        return opt
    opt = dict(opt or {})
    preset = opt.pop("preset", None) or "realesrgan_default"
    if preset not in PRESETS:
        close = difflib.get_close_matches(str(preset), list(PRESETS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown degradation preset {preset!r}.{hint} Known: {', '.join(PRESETS)}")
    defaults = PRESETS[preset]
    for key in opt:
        if key not in defaults:
            close = difflib.get_close_matches(str(key), list(defaults), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else f" Known keys: {', '.join(defaults)}"
            raise ConfigError(f"unknown degradation option {key!r} for preset {preset!r}.{hint}")
    merged = copy.deepcopy(defaults)
    merged.update(opt)
    for key, value in merged.items():
        _check(key, value, merged)
    merged["preset"] = preset
    return ResolvedOptions(merged)


# ----------------------------------------------------------------------------------------------- single steps
def to_uint8(img):
    """``round(clip(img * 255, 0, 255))`` as uint8 (OpenCV: round half to even, as ``np.rint``)."""
    return cv2.convertScaleAbs(cv2.max(img, 0.0), alpha=255.0)


def quantize(img):
    """Clip to [0, 1] and round to a multiple of 1/255 (Real-ESRGAN's last step)."""
    out = to_uint8(img).astype(np.float32)
    np.divide(out, np.float32(255.0), out=out)
    return out


def _trim_zero_border(kernel):
    """Drop all-zero outer rings (the padding up to 21): with a reflect border the result is the same."""
    k = kernel
    while k.shape[0] > 1 and not (k[0].any() or k[-1].any() or k[:, 0].any() or k[:, -1].any()):
        k = k[1:-1, 1:-1]
    return k


# cv2.filter2D switches to its DFT path for kernels above 11x11; on images above ~220x220 that path costs 1.7x
# a per-channel cv2.dft product (measured here), so large images with large kernels take dft_correlate.
_DIRECT_MAX_TAPS = 11 * 11
_DFT_MIN_PIXELS = 224 * 224


def dft_correlate(img, kernel):
    """Correlation of each channel of ``img`` (HxW or HxWxC float32) with ``kernel`` (odd sizes), reflect-101 border,
    by a per-channel real DFT product: the same values as ``cv2.filter2D`` (to float32 rounding)."""
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    h, w = img.shape[:2]
    fh, fw = cv2.getOptimalDFTSize(h + 2 * ph), cv2.getOptimalDFTSize(w + 2 * pw)
    padded_kernel = np.zeros((fh, fw), np.float32)
    padded_kernel[:kh, :kw] = kernel
    spectrum = cv2.dft(padded_kernel)
    planes = [img] if img.ndim == 2 else [cv2.extractChannel(img, i) for i in range(img.shape[2])]
    out = np.empty(img.shape, np.float32)
    for i, plane in enumerate(planes):
        padded = cv2.copyMakeBorder(plane, ph, fh - h - ph, pw, fw - w - pw, cv2.BORDER_REFLECT_101)
        product = cv2.mulSpectrums(cv2.dft(padded), spectrum, 0, conjB=True)  # conj: correlation, not convolution
        result = cv2.idft(product, flags=cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT)[:h, :w]
        if img.ndim == 2:
            return result
        out[:, :, i] = result
    return out


def filter2d(img, kernel):
    """Correlate each channel with ``kernel`` (reflect-101 border, as Real-ESRGAN's ``filter2D``); ``None`` = identity.

    Separable kernels (isotropic Gaussians) go through ``cv2.sepFilter2D``, large kernels on large images through
    ``dft_correlate``, the others through ``cv2.filter2D``.
    """
    if kernel is None:
        return img
    k = _trim_zero_border(np.asarray(kernel, dtype=np.float64))
    rows, cols = k.sum(axis=1), k.sum(axis=0)
    if np.max(np.abs(k - np.outer(rows, cols))) <= 1e-9 * np.max(np.abs(k)) and abs(k.sum() - 1) < 1e-9:
        return cv2.sepFilter2D(img, -1, cols.astype(np.float32), rows.astype(np.float32),
                               borderType=cv2.BORDER_REFLECT_101)
    h, w = img.shape[:2]
    if k.size > _DIRECT_MAX_TAPS and h * w >= _DFT_MIN_PIXELS and min(h, w) > k.shape[0] and img.dtype == np.float32:
        return dft_correlate(img, k.astype(np.float32))
    return cv2.filter2D(img, -1, k.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)


def resize(img, size_hw, mode="bicubic"):
    """``cv2.resize`` to ``(height, width)`` with ``area`` / ``bilinear`` / ``bicubic``."""
    h, w = max(1, int(size_hw[0])), max(1, int(size_hw[1]))
    if (h, w) == img.shape[:2]:
        return img
    return cv2.resize(img, (w, h), interpolation=RESIZE_MODES[mode])


def random_mode(rng, modes=tuple(RESIZE_MODES)):
    return modes[int(rng.integers(len(modes)))]


def random_updown_scale(resize_prob, resize_range, rng):
    """Real-ESRGAN: up (1..high), down (low..1) or keep (1) with weights ``resize_prob``."""
    p = np.asarray(resize_prob, dtype=np.float64)
    kind = rng.choice(3, p=p / p.sum())
    if kind == 0:
        return rng.uniform(1, resize_range[1])
    if kind == 1:
        return rng.uniform(resize_range[0], 1)
    return 1.0


def random_resize(img, resize_prob, resize_range, rng, modes=tuple(RESIZE_MODES)):
    """Resize by a random up/down/keep factor with a random interpolation (size = floor(side * factor))."""
    scale = random_updown_scale(resize_prob, resize_range, rng)
    mode = random_mode(rng, modes)
    h, w = img.shape[:2]
    return resize(img, (int(h * scale), int(w * scale)), mode)


def gaussian_noise(shape, sigma, rng, gray=False):
    """Zero-mean Gaussian noise of std ``sigma / 255``; ``gray`` repeats one plane over the channels.

    Drawn by OpenCV's ``randn`` (4x faster than numpy's float32 normals here), seeded from ``rng`` so a seeded
    ``rng`` still gives the same noise.
    """
    h, w = shape[:2]
    channels = 1 if gray or len(shape) < 3 else shape[2]
    noise = np.empty((h, w * channels), np.float32)
    cv2.setRNGSeed(int(rng.integers(2 ** 31 - 1)))
    cv2.randn(noise, 0.0, sigma / 255.0)
    noise = noise.reshape(h, w, channels)
    if gray and len(shape) == 3 and shape[2] != 1:
        return np.repeat(noise, shape[2], axis=2)
    return noise if len(shape) == 3 else noise[:, :, 0]


@functools.lru_cache(maxsize=16)
def _poisson_tables(vals, bins=4096):
    """Inverse-CDF tables for Poisson(q * vals / 255), q = 0..255: the CDF per level and a guide table that gives
    the exact sample for a uniform in bin j when the bin holds no CDF step (else ``-(first candidate + 1)``)."""
    lam = np.arange(256) * (vals / 255.0)
    kmax = int(lam[-1] + 15 * np.sqrt(lam[-1]) + 30)
    cdf = special.pdtr(np.arange(kmax + 1)[None, :], lam[:, None])
    cdf[:, -1] = 1.0
    edges = np.arange(bins + 1) / bins
    guide = np.empty((256, bins), np.int16)  # kmax < 600
    for q in range(256):
        start = np.searchsorted(cdf[q], edges[:-1], side="right")
        exact = cdf[q, start] >= edges[1:]
        guide[q] = np.where(exact, start, -(start + 1))
    return cdf, guide, bins


def sample_poisson_levels(levels, vals, rng):
    """Poisson samples with means ``levels * vals / 255`` for integer ``levels`` in 0..255, by inverse-CDF sampling
    with a guide table (numpy's per-element sampler costs ~40 ns a value and was the largest cost of the pipeline).

    A uniform is drawn in two parts: its bin ``j`` (OpenCV's ``randu`` on integers, seeded from ``rng``) and, only
    where the bin holds a CDF step, its position inside the bin (uniform given ``j``)."""
    cdf, guide, bins = _poisson_tables(float(vals))
    flat_levels = np.ascontiguousarray(levels).reshape(-1)
    index = np.empty(flat_levels.size, np.int32)
    cv2.setRNGSeed(int(rng.integers(2 ** 31 - 1)))
    cv2.randu(index, 0, bins)  # j in [0, bins)
    index += np.multiply(flat_levels, bins, dtype=np.int32)
    out = np.take(guide.reshape(-1), index)  # int16 (kmax < 600); np.take is 2x fancy indexing here
    todo = np.flatnonzero(out < 0)  # bins holding a CDF step: walk up while F(k) <= u
    k = -out[todo] - 1
    ut = ((index[todo] & (bins - 1)) + rng.random(todo.size)) / bins
    row = flat_levels[todo].astype(np.int64) * cdf.shape[1]
    flat_cdf = cdf.reshape(-1)
    for _ in range(64):
        if not todo.size:
            break
        step = flat_cdf[row + k] <= ut
        out[todo[~step]] = k[~step]
        todo, k, row, ut = todo[step], k[step] + 1, row[step], ut[step]
    for i, r, v in zip(todo, row // cdf.shape[1], ut):  # none in practice: binary search in their row
        out[i] = np.searchsorted(cdf[r], v, side="right")
    return out.reshape(levels.shape)


def poisson_noise(img, scale, rng, gray=False):
    """BasicSR's Poisson noise: ``Poisson(x * vals) / vals - x`` times ``scale``, with ``x`` the image rounded to
    1/255 and ``vals`` the number of distinct 8-bit values rounded up to a power of two; ``gray`` uses the luma."""
    src = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if gray else img
    levels = to_uint8(src)
    histogram = cv2.calcHist([levels.reshape(levels.shape[0], -1)], [0], None, [256], [0, 256])
    distinct = np.count_nonzero(histogram)
    vals = 2.0 ** np.ceil(np.log2(max(distinct, 1)))
    counts = sample_poisson_levels(levels, vals, rng)
    noise = counts.astype(np.float32) * np.float32(scale / vals) - levels * np.float32(scale / 255.0)
    if gray:
        return np.repeat(noise[:, :, None], img.shape[2], axis=2)
    return noise


def add_noise(img, noise):
    out = np.add(img, noise, dtype=np.float32)
    return np.clip(out, 0, 1, out=out)


def random_add_gaussian_noise(img, sigma_range, gray_prob, rng):
    sigma = rng.uniform(sigma_range[0], sigma_range[1])
    gray = rng.uniform() < gray_prob
    return add_noise(img, gaussian_noise(img.shape, sigma, rng, gray))


def random_add_poisson_noise(img, scale_range, gray_prob, rng):
    scale = rng.uniform(scale_range[0], scale_range[1])
    gray = rng.uniform() < gray_prob
    return add_noise(img, poisson_noise(img, scale, rng, gray))


def random_add_noise(img, gaussian_prob, noise_range, poisson_scale_range, gray_prob, rng):
    """Gaussian noise with ``gaussian_prob``, else Poisson noise; grey with ``gray_prob``; clipped to [0, 1]."""
    if rng.uniform() < gaussian_prob:
        return random_add_gaussian_noise(img, noise_range, gray_prob, rng)
    return random_add_poisson_noise(img, poisson_scale_range, gray_prob, rng)


def jpeg(img, quality):
    """JPEG round trip through OpenCV at ``quality`` (rounded to an integer, 4:2:0 chroma as DiffJPEG)."""
    bgr = cv2.cvtColor(to_uint8(img), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(round(quality))])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32)
    np.divide(out, np.float32(255.0), out=out)
    return out


@functools.lru_cache(maxsize=8)
def _gaussian_kernel(size):
    """OpenCV's Gaussian for ``sigma=0`` (0.3 * ((size - 1) / 2 - 1) + 0.8), float32 as GaussianBlur uses it."""
    return cv2.getGaussianKernel(size, 0, ktype=cv2.CV_32F)


def usm_sharp(img, weight=0.5, radius=50, threshold=10, crop=None):
    """Real-ESRGAN's USMSharp: ``img + weight * (img - blur)`` where ``|img - blur| * 255 > threshold`` (mask blurred
    with the same Gaussian), clipped; the Gaussian is ``cv2.getGaussianKernel(radius | 1, sigma=0)``, applied
    separably (Real-ESRGAN convolves with its 51x51 outer product: the same numbers, 25x less work).

    ``crop=(y, x, h, w)`` returns ``usm_sharp(img)[y:y+h, x:x+w]`` computed on the windows it depends on only.
    """
    k = radius + 1 if radius % 2 == 0 else radius
    r = k // 2
    height, width = img.shape[:2]
    y, x, h, w = crop if crop is not None else (0, 0, height, width)

    def window(m):
        return max(0, y - m), max(0, x - m), min(height, y + h + m), min(width, x + w + m)

    g = _gaussian_kernel(k)
    a0, b0, a1, b1 = window(2 * r)  # the blur is right on the mask window, r inside this one
    blur = cv2.sepFilter2D(img[a0:a1, b0:b1], -1, g, g, borderType=cv2.BORDER_REFLECT_101)
    c0, d0, c1, d1 = window(r)  # the soft mask is right on the crop, r inside this one
    residual = img[c0:c1, d0:d1] - blur[c0 - a0:c1 - a0, d0 - b0:d1 - b0]
    # 0 / 255, uint8; the threshold as a 4-tuple: OpenCV 5 reads a bare number as (t, 0, 0, 0), one value per channel
    mask = cv2.compare(cv2.absdiff(residual, 0), (threshold / 255,) * 4, cv2.CMP_GT)
    soft = cv2.sepFilter2D(mask, cv2.CV_32F, g, g / 255, borderType=cv2.BORDER_REFLECT_101)
    soft = soft[y - c0:y - c0 + h, x - d0:x - d0 + w]
    residual = residual[y - c0:y - c0 + h, x - d0:x - d0 + w]
    base = img[y:y + h, x:x + w]
    sharp = cv2.scaleAdd(residual, float(weight), base)
    np.clip(sharp, 0, 1, out=sharp)
    return cv2.scaleAdd(cv2.multiply(soft, cv2.subtract(sharp, base)), 1.0, base)


# ----------------------------------------------------------------------------------------------- pipelines
def _target(gt, scale):
    h, w = gt.shape[:2]
    return h // scale, w // scale


def _realesrgan_default(gt, o, rng, scale):
    """Real-ESRGAN's second-order degradation (``RealESRNetModel.feed_data``)."""
    h, w = gt.shape[:2]
    kernel1 = random_blur_kernel(o["kernel_list"], o["kernel_prob"], o["blur_sigma"], o["betag_range"],
                                 o["betap_range"], o["sinc_prob"], rng, o["blur_kernel_size"])
    kernel2 = random_blur_kernel(o["kernel_list2"], o["kernel_prob2"], o["blur_sigma2"], o["betag_range2"],
                                 o["betap_range2"], o["sinc_prob2"], rng, o["blur_kernel_size2"])
    sinc = random_final_sinc_kernel(o["final_sinc_prob"], rng)
    # first degradation
    out = filter2d(gt, kernel1)
    out = random_resize(out, o["resize_prob"], o["resize_range"], rng)
    out = random_add_noise(out, o["gaussian_noise_prob"], o["noise_range"], o["poisson_scale_range"],
                           o["gray_noise_prob"], rng)
    out = jpeg(out, rng.uniform(*o["jpeg_range"]))
    # second degradation
    if rng.uniform() < o["second_blur_prob"]:
        out = filter2d(out, kernel2)
    s = random_updown_scale(o["resize_prob2"], o["resize_range2"], rng)
    out = resize(out, (int(h / scale * s), int(w / scale * s)), random_mode(rng))
    out = random_add_noise(out, o["gaussian_noise_prob2"], o["noise_range2"], o["poisson_scale_range2"],
                           o["gray_noise_prob2"], rng)
    # [resize back + sinc] and JPEG, in random order
    if rng.uniform() < 0.5:
        out = filter2d(resize(out, _target(gt, scale), random_mode(rng)), sinc)
        out = jpeg(out, rng.uniform(*o["jpeg_range2"]))
    else:
        out = jpeg(out, rng.uniform(*o["jpeg_range2"]))
        out = filter2d(resize(out, _target(gt, scale), random_mode(rng)), sinc)
    return quantize(out)


def _resize_only(gt, o, rng, scale):
    return quantize(resize(gt, _target(gt, scale), random_mode(rng, o["resize_modes"])))


def _jpeg_only(gt, o, rng, scale):
    out = resize(gt, _target(gt, scale), random_mode(rng, o["resize_modes"]))
    return quantize(jpeg(out, rng.uniform(*o["jpeg_range"])))


def _anime_light(gt, o, rng, scale):
    """JPEG -> improper resize -> mild blur -> resize to gt/scale -> ringing (sinc) -> second JPEG; no noise."""
    kernel = random_blur_kernel(o["kernel_list"], o["kernel_prob"], o["blur_sigma"], o["betag_range"],
                                o["betap_range"], o["sinc_prob"], rng, o["blur_kernel_size"])
    sinc = random_final_sinc_kernel(o["final_sinc_prob"], rng)
    out = jpeg(gt, rng.uniform(*o["jpeg_range"]))
    out = random_resize(out, o["resize_prob"], o["resize_range"], rng, o["resize_modes"])
    if rng.uniform() < o["blur_prob"]:
        out = filter2d(out, kernel)
    out = filter2d(resize(out, _target(gt, scale), random_mode(rng, o["resize_modes"])), sinc)
    return quantize(jpeg(out, rng.uniform(*o["jpeg_range2"])))


PIPELINES = {
    "realesrgan_default": _realesrgan_default,
    "resize_only": _resize_only,
    "jpeg_only": _jpeg_only,
    "anime_light": _anime_light,
}


def degrade(gt, opt, rng, scale=4):
    """LQ (``H//scale x W//scale x 3`` float32, multiples of 1/255) synthesised from ``gt`` by ``opt``'s preset."""
    o = resolve_options(opt)
    gt = np.ascontiguousarray(gt, dtype=np.float32)
    if gt.ndim != 3 or gt.shape[2] != 3:
        raise ValueError(f"degrade expects an HxWx3 image, got shape {gt.shape}")
    return PIPELINES[o["preset"]](gt, o, rng, int(scale))
