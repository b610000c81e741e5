"""SRDataset: LQ/GT image pairs from two folders, paired by file name (PaddleGAN's SRDataset)."""
import os

import numpy as np

from common_data.config.loading import DEMO_HINT
from common_data.data.datasets import DATASETS
from common_data.errors import DataError, few
from common_data.data.imageio import IMAGE_EXTENSIONS, image_size, list_images
from common_data.data.transforms import build_preprocess

ITEM_KEYS = ("lq", "gt", "lq_path", "gt_path")


@DATASETS.register()
class SRDataset:
    """Pairs ``gt_folder/<sub>/<name><ext>`` with ``lq_folder/<sub>/<filename_tmpl.format(name)><ext>``.

    Items are dicts: ``lq``, ``gt`` (what ``preprocess`` gives: float32 CHW in [0, 1] with the standard
    pipeline), ``lq_path``, ``gt_path``. Sizes (GT = LQ x scale) are checked per item when it is read;
    ``check_sizes()`` checks every pair up front.
    """

    def __init__(self, gt_folder, lq_folder, preprocess, scale, filename_tmpl="{}"):
        self.gt_folder = os.fspath(gt_folder)
        self.lq_folder = os.fspath(lq_folder)
        self.scale = scale
        self.filename_tmpl = filename_tmpl
        self.preprocess = build_preprocess(preprocess)
        self.data_infos = self.prepare_data_infos()

    def prepare_data_infos(self):
        gt_paths = scan_folder(self.gt_folder, "gt_folder")
        lq_paths = scan_folder(self.lq_folder, "lq_folder")
        lq_rel = {os.path.relpath(p, self.lq_folder) for p in lq_paths}
        infos, no_lq, paired = [], [], set()
        for gt_path in gt_paths:
            rel = self.lq_name(os.path.relpath(gt_path, self.gt_folder))
            if rel in lq_rel:
                paired.add(rel)
                infos.append({"lq_path": os.path.join(self.lq_folder, rel), "gt_path": gt_path})
            else:
                no_lq.append(rel)
        no_gt = sorted(lq_rel - paired)
        if no_lq or no_gt:
            parts = [f"no LQ for {few(no_lq)}" if no_lq else "", f"no GT partner for LQ {few(no_gt)}" if no_gt else ""]
            raise DataError(f"lq_folder {self.lq_folder} and gt_folder {self.gt_folder} hold different files: "
                            f"{'; '.join(p for p in parts if p)}; LQ names must be filename_tmpl "
                            f"{self.filename_tmpl!r} applied to the GT names")
        return infos

    def lq_name(self, gt_rel):
        sub, base = os.path.split(gt_rel)
        stem, ext = os.path.splitext(base)
        return os.path.join(sub, self.filename_tmpl.format(stem) + ext)

    def __len__(self):
        return len(self.data_infos)

    def __getitem__(self, idx):
        results = self.preprocess(dict(self.data_infos[idx]))
        if "lq_ori_shape" in results and "gt_ori_shape" in results:
            self._check_pair(results["lq_path"], results["lq_ori_shape"], results["gt_path"], results["gt_ori_shape"])
        item = {k: results[k] for k in ITEM_KEYS if k in results}
        item.update({k: v for k, v in results.items()
                     if isinstance(v, np.ndarray) and k not in item and not k.startswith("ori_")})
        return item

    def check_sizes(self):
        """Check GT = LQ x scale for every pair (PNG headers are read, other formats decoded); returns the count."""
        for info in self.data_infos:
            lq, gt = info["lq_path"], info["gt_path"]
            self._check_pair(lq, image_hw(lq), gt, image_hw(gt))
        return len(self.data_infos)

    def _check_pair(self, lq_path, lq_shape, gt_path, gt_shape):
        (h_lq, w_lq), (h_gt, w_gt), s = lq_shape[:2], gt_shape[:2], self.scale
        if h_gt != h_lq * s or w_gt != w_lq * s:
            raise DataError(f"LQ {lq_path} is {w_lq}x{h_lq} but GT {gt_path} is {w_gt}x{h_gt}; GT must be LQ x scale "
                            f"{s} ({w_lq * s}x{h_lq * s}): regenerate the LQ images or fix scale")


def scan_folder(folder, key):
    """Sorted image paths under ``folder`` (recursive); DataError naming the folder if missing or empty."""
    if not os.path.exists(folder):
        raise DataError(f"{key} {folder} does not exist; {DEMO_HINT}, or point {key} at your data")
    if not os.path.isdir(folder):
        raise DataError(f"{key} {folder} is a file, not a folder; point {key} at the folder of images")
    paths = list_images(folder, recursive=True)
    if not paths:
        raise DataError(f"{key} {folder} has no image files ({' '.join(IMAGE_EXTENSIONS)}); put the images there")
    return paths


def image_hw(path):
    """(height, width) of an image as read, from its header (no decoding; FIFOs and devices refused unread)."""
    return image_size(path)


