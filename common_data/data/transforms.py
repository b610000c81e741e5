"""PaddleGAN's preprocess ops on numpy arrays, with PaddleGAN's semantics and random draws.

A config's ``preprocess:`` list holds PREPROCESS ops (``LoadImageFromFile``, ``Transforms``) that map a
results dict to a results dict; ``Transforms`` runs a ``pipeline:`` of TRANSFORMS ops on a tuple of
arrays taken from ``input_keys``. Random choices use Python's ``random`` exactly where PaddleGAN does
(one ``random.random()`` per flip/transpose op, two ``random.randint`` per crop), so after the same
``random.seed()`` our pipeline and ppgan 2.1.0's give equal arrays. Inputs are single HWC images
(PaddleGAN's lists of video frames are not supported).
"""
import numbers
import random

import cv2
import numpy as np

from common_data.errors import ConfigError, DataError
from common_data.data.imageio import convert_channels, read_raw, read_uint8
from common_data.registry import Registry

PREPROCESS = Registry("preprocess op")
TRANSFORMS = Registry("transform")


@PREPROCESS.register()
class LoadImageFromFile:
    """Read ``results[key + '_path']`` into ``results[key]``: uint8 HWC, RGB when ``to_rgb``.

    ``flag``: ``color`` (default; 3 channels), ``grayscale`` (HxW) or ``unchanged`` / -1 (as stored).
    Any path works (spaces, unicode): bytes are decoded with OpenCV via common_data.data.imageio.
    """

    FLAGS = {"color": "color", 1: "color", "grayscale": "grayscale", 0: "grayscale",
             "unchanged": "unchanged", -1: "unchanged"}

    def __init__(self, key="image", flag="color", to_rgb=True, save_original_img=False, backend=None, **kwargs):
        if flag not in self.FLAGS:
            raise ConfigError(f"LoadImageFromFile.flag must be color, grayscale or unchanged, got {flag!r}")
        self.key = key
        self.flag = self.FLAGS[flag]
        self.to_rgb = to_rgb
        self.save_original_img = save_original_img
        self.backend = backend
        self.kwargs = kwargs

    def __call__(self, results):
        path = str(results[f"{self.key}_path"])
        if self.flag == "color":
            img = read_uint8(path, "rgb" if self.to_rgb else "bgr")
        elif self.flag == "grayscale":
            img = cv2.cvtColor(read_uint8(path, "bgr"), cv2.COLOR_BGR2GRAY)
        else:
            img = read_raw(path)
            if self.to_rgb and img.ndim == 3:
                img = convert_channels(img, "rgb" if img.shape[2] == 3 else "rgba")
        results[self.key] = img
        results[f"{self.key}_path"] = path
        results[f"{self.key}_ori_shape"] = img.shape
        if self.save_original_img:
            results[f"ori_{self.key}"] = img.copy()
        return results


@PREPROCESS.register()
class Transforms:
    """Run a pipeline of TRANSFORMS ops on ``(results[k] for k in input_keys)``; write the outputs back.

    As in PaddleGAN, each op's random ``params`` (e.g. ``flip``) are also stored in the results dict, and
    ``output_keys`` (if given) name where the outputs go in addition to ``input_keys``.
    """

    def __init__(self, pipeline, input_keys, output_keys=None, where="Transforms.pipeline"):
        self.input_keys = list(input_keys)
        self.output_keys = output_keys
        self.transforms = [TRANSFORMS.build(cfg, where=f"{where}[{i}]") for i, cfg in enumerate(pipeline)]

    def __call__(self, results):
        data = tuple(results[k] for k in self.input_keys)
        for transform in self.transforms:
            try:
                data = transform(data)
            except DataError as e:
                files = " and ".join(f"{k} {results.get(k + '_path', '?')}" for k in self.input_keys)
                raise DataError(f"{files}: {e}") from None
            if isinstance(getattr(transform, "params", None), dict):
                results.update(transform.params)
        if len(self.input_keys) > 1:
            for k, v in zip(self.input_keys, data):
                results[k] = v
        else:
            results[self.input_keys[-1]] = data
        for k, v in zip(self.output_keys or (), data):
            results[k] = v
        return results


class BaseTransform:
    """paddle.vision's calling logic: draw ``params`` once, then apply to the first ``len(keys)`` inputs.

    ``keys`` defaults to ``('image',)``: with a (lq, gt) tuple only lq is transformed, as in PaddleGAN,
    so paired configs say ``keys: [image, image]``.
    """

    def __init__(self, keys=None):
        keys = ("image",) if keys is None else keys
        if isinstance(keys, str) or any(k != "image" for k in keys):
            raise ConfigError(f"{type(self).__name__}.keys must be a list of 'image' entries "
                              f"(one per input, e.g. [image, image]), got {keys!r}")
        self.keys = tuple(keys)
        self.params = None

    def _get_params(self, inputs):
        return None

    def _apply_image(self, img):
        raise NotImplementedError

    def __call__(self, inputs):
        if not isinstance(inputs, tuple):
            inputs = (inputs,)
        self.params = self._get_params(inputs)
        n = min(len(inputs), len(self.keys))
        outputs = [self._apply_image(x) for x in inputs[:n]] + list(inputs[n:])
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


class _RandomPairedOp(BaseTransform):
    """An op that decides once per call, with ``random.random() < prob``, whether to act on all inputs."""

    param_name = "flip"

    def __init__(self, prob=0.5, keys=None):
        super().__init__(keys)
        self.prob = prob

    def _get_params(self, inputs):
        return {self.param_name: random.random() < self.prob}

    def _apply_image(self, img):
        return self._act(img) if self.params[self.param_name] else img


@TRANSFORMS.register()
class PairedRandomHorizontalFlip(_RandomPairedOp):
    """Flip all inputs left-right with probability ``prob``."""

    @staticmethod
    def _act(img):
        return np.ascontiguousarray(img[:, ::-1])


@TRANSFORMS.register()
class PairedRandomVerticalFlip(_RandomPairedOp):
    """Flip all inputs upside-down with probability ``prob``."""

    @staticmethod
    def _act(img):
        return np.ascontiguousarray(img[::-1])


@TRANSFORMS.register()
class PairedRandomTransposeHW(_RandomPairedOp):
    """Swap H and W of all HWC inputs with probability ``prob``."""

    param_name = "transpose"

    @staticmethod
    def _act(img):
        return img.transpose(1, 0, 2)


@TRANSFORMS.register()
class SRPairedRandomCrop(BaseTransform):
    """Crop a ``gt_patch_size`` GT patch and the matching ``gt_patch_size // scale`` LQ patch.

    Inputs are ``(lq, gt)`` HWC; with ``scale_list`` and scale 4 the output is ``(lq, lq_x2, gt)`` where
    lq_x2 is the GT patch bicubically (OpenCV) resized to half size.
    """

    def __init__(self, scale, gt_patch_size, scale_list=False, keys=None):
        super().__init__(keys)
        self.scale = scale
        self.gt_patch_size = gt_patch_size
        self.scale_list = scale_list

    def __call__(self, inputs):
        lq, gt = inputs[0], inputs[1]
        scale, gt_size = self.scale, self.gt_patch_size
        lq_size = gt_size // scale
        h_lq, w_lq = lq.shape[:2]
        h_gt, w_gt = gt.shape[:2]
        if h_gt != h_lq * scale or w_gt != w_lq * scale:
            raise DataError(f"GT is {w_gt}x{h_gt} but LQ is {w_lq}x{h_lq}; GT must be LQ x scale {scale} "
                            f"({w_lq * scale}x{h_lq * scale}): regenerate the LQ images or fix scale")
        if h_lq < lq_size or w_lq < lq_size:
            raise DataError(f"LQ is {w_lq}x{h_lq}, smaller than the LQ patch {lq_size}x{lq_size} "
                            f"(gt_patch_size {gt_size} / scale {scale}): use bigger images or a smaller gt_patch_size")
        top = random.randint(0, h_lq - lq_size)
        left = random.randint(0, w_lq - lq_size)
        lq = lq[top:top + lq_size, left:left + lq_size, ...]
        top_gt, left_gt = int(top * scale), int(left * scale)
        gt = gt[top_gt:top_gt + gt_size, left_gt:left_gt + gt_size, ...]
        if self.scale_list and scale == 4:
            lq_x2 = cv2.resize(gt, (lq_size * 2, lq_size * 2), interpolation=cv2.INTER_CUBIC)
            return lq, lq_x2, gt
        return lq, gt


@TRANSFORMS.register()
class Transpose(BaseTransform):
    """Reorder axes (default HWC -> CHW); an HxW image is taken as HxWx1 first."""

    def __init__(self, order=(2, 0, 1), keys=None):
        super().__init__(keys)
        self.order = tuple(order)

    def _apply_image(self, img):
        img = np.asarray(img)
        if img.ndim == 2:
            img = img[..., None]
        return img.transpose(self.order)


@TRANSFORMS.register()
class Normalize(BaseTransform):
    """``(img - mean) / std`` per channel in float32; ``data_format`` says where channels are.

    ``to_rgb`` reverses the last axis, as paddle.vision does (the channels only for HWC data).
    """

    def __init__(self, mean=0.0, std=1.0, data_format="CHW", to_rgb=False, keys=None):
        super().__init__(keys)
        self.mean = [mean] * 3 if isinstance(mean, numbers.Number) else list(mean)
        self.std = [std] * 3 if isinstance(std, numbers.Number) else list(std)
        if data_format not in ("CHW", "HWC"):
            raise ConfigError(f"Normalize.data_format must be CHW or HWC, got {data_format!r}")
        self.data_format = data_format
        self.to_rgb = to_rgb

    def _apply_image(self, img):
        shape = (-1, 1, 1) if self.data_format == "CHW" else (1, 1, -1)
        mean = np.float32(np.array(self.mean).reshape(shape))
        std = np.float32(np.array(self.std).reshape(shape))
        if self.to_rgb:
            img = img[..., ::-1]
        return (img - mean) / std


class Compose:
    """Apply preprocess ops in order to a results dict."""

    def __init__(self, ops):
        self.ops = list(ops)

    def __call__(self, results):
        for op in self.ops:
            results = op(results)
        return results


def build_preprocess(cfg_list, where="preprocess"):
    """Build a callable on a results dict from a config's ``preprocess:`` list (or one mapping)."""
    if cfg_list is None:
        return Compose([])
    if isinstance(cfg_list, dict):
        cfg_list = [cfg_list]
    ops = []
    for i, cfg in enumerate(cfg_list):
        at = f"{where}[{i}]"
        if isinstance(cfg, dict) and cfg.get("name") == "Transforms":
            ops.append(_build_transforms(cfg, at))
        else:
            ops.append(PREPROCESS.build(cfg, where=at))
    return Compose(ops)


def _build_transforms(cfg, where):
    kwargs = {k: v for k, v in cfg.items() if k != "name"}
    if "pipeline" not in kwargs or "input_keys" not in kwargs:
        raise ConfigError(f"{where} (Transforms): needs 'pipeline:' and 'input_keys:'")
    try:
        return Transforms(where=f"{where}.pipeline", **kwargs)
    except TypeError as e:
        raise ConfigError(f"{where} (Transforms): {e}") from None
