"""RealESRGANDataset: GT images only; the LQ is synthesised per item (Real-ESRGAN's degradations, in the worker)."""
import os

import cv2
import numpy as np

from common_data.data.datasets import DATASETS
from common_data.data.degradations import degrade, resolve_options, usm_sharp
from common_data.errors import ConfigError, DataError
from common_data.data.imageio import convert_channels, read_raw, to_float01
from common_data.data.sr_dataset import scan_folder


@DATASETS.register()
class RealESRGANDataset:
    """GT images from ``meta_info`` (one path per line, relative to ``dataroot_gt``; the whole line is the path)
    or, without it, every image under ``dataroot_gt``.

    An item: the GT is flipped / rotated, padded (reflect-101) or randomly cropped to ``crop_pad_size`` (400 as in
    Real-ESRGAN), degraded by ``preset`` with ``degradation_options`` (see ``degradations.PRESETS``), and an aligned
    (``gt_size // scale``, ``gt_size``) pair is cropped. Returns float32 CHW ``lq``, ``gt``, ``gt_usm`` (the
    USM-sharpened GT, always) and ``lq_path`` / ``gt_path`` (both the GT file).
    ``usm_gt=True`` synthesises the LQ from the sharpened GT (Real-ESRGAN's ``gt_usm: True`` for RealESRNet and
    what RealESRGAN always does); ``gt`` stays the plain GT and the model picks its targets.
    ``seed`` makes items deterministic: item ``i`` fetched for the ``n``-th time by this object uses
    ``default_rng([seed, i, n])`` (worker processes that restart each epoch restart ``n``: use persistent workers).
    Without ``seed`` each item draws fresh OS entropy.
    """

    def __init__(self, dataroot_gt, meta_info=None, scale=4, gt_size=256, use_hflip=True, use_rot=True,
                 preset="realesrgan_default", usm_gt=False, seed=None, crop_pad_size=400, **degradation_options):
        self.dataroot_gt = os.fspath(dataroot_gt)
        self.meta_info = os.fspath(meta_info) if meta_info else None
        self.scale, self.gt_size = int(scale), int(gt_size)
        if self.gt_size % self.scale:
            raise ConfigError(f"gt_size {gt_size} must be a multiple of scale {scale}")
        if crop_pad_size < self.gt_size:
            raise ConfigError(f"crop_pad_size {crop_pad_size} must be at least gt_size {gt_size}")
        self.crop_pad_size = int(crop_pad_size)
        self.use_hflip, self.use_rot, self.usm_gt = bool(use_hflip), bool(use_rot), bool(usm_gt)
        self.seed = seed
        self.options = resolve_options({"preset": preset, "gt_size": self.gt_size, **degradation_options})
        self.paths = self.list_paths()
        self._fetches = {}

    def list_paths(self):
        if self.meta_info is None:
            return scan_folder(self.dataroot_gt, "dataroot_gt")
        return read_meta_info(self.meta_info, self.dataroot_gt)

    def __len__(self):
        return len(self.paths)

    def rng_for(self, index):
        if self.seed is None:
            return np.random.default_rng()
        n = self._fetches.get(index, 0)
        self._fetches[index] = n + 1
        return np.random.default_rng([int(self.seed), int(index), n])

    def __getitem__(self, index):
        path = self.paths[index]
        item = self.make_pair(convert_channels(read_raw(path), "rgb"), self.rng_for(index))
        item.update(lq_path=path, gt_path=path)
        return item

    def make_pair(self, gt, rng):
        """The item's arrays from a whole GT image (RGB HxWx3: float32 in [0, 1], uint8 or uint16):
        ``lq``, ``gt``, ``gt_usm`` (float32 CHW). Integer images are cropped before they are made float."""
        gt = to_float01(augment_crop_or_pad(gt, self.crop_pad_size, self.use_hflip, self.use_rot, rng))
        sharp = usm_sharp(gt) if self.usm_gt else None
        lq = degrade(sharp if self.usm_gt else gt, self.options, rng, self.scale)
        lq_size = self.gt_size // self.scale
        top = int(rng.integers(0, lq.shape[0] - lq_size + 1))
        left = int(rng.integers(0, lq.shape[1] - lq_size + 1))
        y, x, s = top * self.scale, left * self.scale, self.gt_size
        gt_usm = sharp[y:y + s, x:x + s] if self.usm_gt else usm_sharp(gt, crop=(y, x, s, s))
        return {"lq": to_chw(lq[top:top + lq_size, left:left + lq_size]), "gt": to_chw(gt[y:y + s, x:x + s]),
                "gt_usm": to_chw(gt_usm)}


def read_meta_info(meta_info, root):
    """Paths listed in ``meta_info`` (blank lines skipped), joined to ``root``; every listed file must exist."""
    try:
        with open(meta_info, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise DataError(f"meta_info {meta_info}: cannot read the list ({e.strerror}); fix the meta_info path") from None
    paths = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        path = os.path.join(root, line)
        if not os.path.isfile(path):
            raise DataError(f"meta_info {meta_info} line {number}: listed file {path!r} does not exist; "
                            f"fix the line or regenerate the list (paths are relative to dataroot_gt {root})")
        paths.append(path)
    if not paths:
        raise DataError(f"meta_info {meta_info} lists no files; put one image path per line")
    return paths


def draw_flips(hflip, rot, rng):
    """BasicSR's augment: horizontal flip, vertical flip and transpose, each with probability 0.5 when enabled."""
    h = bool(hflip and rng.uniform() < 0.5)
    v = bool(rot and rng.uniform() < 0.5)
    t = bool(rot and rng.uniform() < 0.5)
    return h, v, t


def apply_flips(img, h, v, t, view=False):
    """Flip horizontally, vertically, then transpose: numpy views or OpenCV copies."""
    if view:
        img = img[:, ::-1] if h else img
        img = img[::-1] if v else img
        return img.transpose(1, 0, 2) if t else img
    if h and v:
        img = cv2.flip(img, -1)
    elif h or v:
        img = cv2.flip(img, 1 if h else 0)
    return cv2.transpose(img) if t else img


def augment_crop_or_pad(img, size, hflip, rot, rng):
    """Flips then ``crop_or_pad`` (Real-ESRGAN's order). When no padding is needed the window is cut first and
    flipped after: the same distribution, without copying a flipped view of the whole image."""
    flips = draw_flips(hflip, rot, rng)
    h, w = img.shape[:2]
    if h < size or w < size:
        return crop_or_pad(apply_flips(img, *flips, view=True), size, rng)
    return np.ascontiguousarray(apply_flips(crop_or_pad(img, size, rng), *flips))


def crop_or_pad(img, size, rng):
    """Pad bottom/right (reflect-101) up to ``size``, then crop a random ``size x size`` window."""
    h, w = img.shape[:2]
    if h < size or w < size:
        pad = ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0))
        img = np.pad(img, pad, mode="reflect" if min(h, w) > 1 else "edge")
        h, w = img.shape[:2]
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return np.ascontiguousarray(img[top:top + size, left:left + size])


def to_chw(img):
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)
