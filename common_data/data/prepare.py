"""Data preparation steps behind ``tools/prepare_data.py``; each ``*_one`` works on one image (Pool-friendly).

- multi-scale copies (Real-ESRGAN ``generate_multiscale_DF2K``): PIL LANCZOS at 0.75, 0.5, 1/3 and one
  copy whose shortest side is 400, named ``{stem}T0.png`` .. ``{stem}T3.png``;
- sub-images (BasicSR ``extract_subimages``): sliding crops named ``{stem}_s{idx:03d}{ext}``;
- meta-info lists (Real-ESRGAN ``generate_meta_info``): one path per line, relative to a root;
- LQ generation: mod-crop GT to a multiple of the scale, MATLAB bicubic ``1 / scale`` for LQ.
"""
import functools
import os
import re
import zlib

import cv2
import numpy as np

from common_data.data.bicubic import imresize
from common_data.errors import DataError, ImageReadError
from common_data.data.degradations import PRESETS, degrade
from common_data.data.imageio import convert_channels, list_images, read_raw, to_float01, write_image

MULTISCALE_FACTORS = (0.75, 0.5, 1 / 3)
SHORTEST_EDGE = 400
SCALE_SUFFIX = re.compile(r"x(2|3|4|8)$")  # DIV2K's LR names: 0001x4.png


def input_images(folder, recursive=False):
    """Sorted image paths of a folder; DataError when it is missing or holds no image."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise DataError(f"input folder {folder} does not exist; check the path")
    paths = list_images(folder, recursive=recursive)
    if not paths:
        raise DataError(f"input folder {folder} holds no image (.png, .jpg, ...); point to the folder with the images")
    return paths


class Written(list):
    """Paths a step wrote, plus the inputs it ``skipped`` (too small for it) and ``upscaled``."""

    def __init__(self, paths=(), skipped=(), upscaled=()):
        super().__init__(paths)
        self.skipped, self.upscaled = list(skipped), list(upscaled)

    @classmethod
    def merge(cls, parts):
        return cls([p for w in parts for p in w], [s for w in parts for s in w.skipped],
                   [u for w in parts for u in w.upscaled])


def name_list(paths, first=5):
    """``a.png, b.png, c.png`` (file names), ``...`` after the ``first`` few."""
    names = [os.path.basename(p) for p in paths[:first]]
    return ", ".join(names) + (", ..." if len(paths) > first else "")


def summary_lines(written, total, skipped_why="", upscaled_why=""):
    """One line each for skipped and upscaled inputs (count and the first names); none when there were none."""
    lines = []
    if written.skipped:
        lines.append(f"skipped {len(written.skipped)} of {total} images {skipped_why}: {name_list(written.skipped)}")
    if written.upscaled:
        lines.append(f"upscaled {len(written.upscaled)} of {total} images {upscaled_why}: "
                     f"{name_list(written.upscaled)}")
    return lines


def check_empty_output(folder, force=False):
    """A non-empty output folder is refused (DataError naming it) unless ``force``: no silent mixing or overwriting."""
    folder = os.fspath(folder)
    entries = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    if entries and not force:
        raise DataError(f"output folder {folder} is not empty ({len(entries)} entries, e.g. {entries[0]}); "
                        "choose an empty or new folder, or add --force to write into it")


def run_parallel(func, items, workers=1, desc=None):
    """Apply ``func`` to every item with a tqdm bar (on a terminal); a ``multiprocessing.Pool`` when workers > 1."""
    from tqdm import tqdm

    results = []
    with tqdm(total=len(items), unit="image", desc=desc, disable=None) as bar:  # None: no bar in logs / pipes
        if workers <= 1:
            for item in items:
                results.append(func(item))
                bar.update(1)
        else:
            from multiprocessing import Pool

            with Pool(workers) as pool:
                for result in pool.imap(func, items):
                    results.append(result)
                    bar.update(1)
    return results


# ----------------------------------------------------------------------------------------- multi-scale
def multiscale_sizes(width, height, factors=MULTISCALE_FACTORS, shortest_edge=SHORTEST_EDGE):
    """(width, height) of each copy: ``int(side * factor)``, then the one whose shortest side is ``shortest_edge``."""
    sizes = [(int(width * f), int(height * f)) for f in factors]
    if width < height:
        sizes.append((shortest_edge, int(shortest_edge * height / width)))
    else:
        sizes.append((int(shortest_edge * width / height), shortest_edge))
    return sizes


def multiscale_one(path, output_folder, factors=MULTISCALE_FACTORS, shortest_edge=SHORTEST_EDGE):
    """Write ``{stem}T{i}.png`` for every size of :func:`multiscale_sizes`; returns the written paths
    (``upscaled``: ``[path]`` when a copy is larger than the image)."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError("multiscale needs Pillow (Real-ESRGAN resizes with PIL LANCZOS): pip install pillow") from None
    try:
        with Image.open(path) as opened:
            opened.load()
            img = opened.copy()
    except OSError as e:
        raise ImageReadError(f"cannot read image {path}: {e}; replace or remove it") from None
    if img.mode not in ("1", "L", "LA", "RGB", "RGBA", "I", "I;16", "F"):
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    stem = os.path.splitext(os.path.basename(path))[0]
    written = Written()
    for i, size in enumerate(multiscale_sizes(*img.size, factors, shortest_edge)):
        if min(size) < 1:
            raise DataError(f"image {path} is too small for a x{min(factors):.3g} copy; remove it")
        out = os.path.join(output_folder, f"{stem}T{i}.png")
        img.resize(size, resample=Image.LANCZOS).save(out)
        written.append(out)
        if size[0] * size[1] > img.size[0] * img.size[1] and not written.upscaled:
            written.upscaled.append(path)
    return written


def multiscale(input_folder, output_folder, workers=1, factors=MULTISCALE_FACTORS, shortest_edge=SHORTEST_EDGE):
    """All copies of every input (:class:`Written`; ``upscaled`` lists the inputs smaller than a copy)."""
    paths = input_images(input_folder)
    os.makedirs(output_folder, exist_ok=True)
    func = functools.partial(multiscale_one, output_folder=os.fspath(output_folder), factors=tuple(factors),
                             shortest_edge=shortest_edge)
    return Written.merge(run_parallel(func, paths, workers, "multiscale"))


# ------------------------------------------------------------------------------------------ sub-images
def crop_starts(length, crop_size, step, thresh_size):
    """Window starts along one side: every ``step``, plus a last one flush with the end when the
    uncovered rest is larger than ``thresh_size`` (BasicSR's rule)."""
    starts = list(range(0, length - crop_size + 1, step))
    if not starts:
        return []
    if length - (starts[-1] + crop_size) > thresh_size:
        starts.append(length - crop_size)
    return starts


def subimages_one(path, output_folder, crop_size=480, step=240, thresh_size=0, compression_level=3,
                  strip_scale_suffix=False):
    """Crop one image into ``{stem}_s{idx:03d}{ext}`` (idx from 1, row-major); returns the written paths
    (``skipped``: ``[path]`` when the image is smaller than one crop)."""
    img = read_raw(path)
    stem, ext = os.path.splitext(os.path.basename(path))
    if strip_scale_suffix:
        stem = SCALE_SUFFIX.sub("", stem)
    h, w = img.shape[:2]
    params = [cv2.IMWRITE_PNG_COMPRESSION, int(compression_level)] if ext.lower() == ".png" else []
    written = Written()
    for top in crop_starts(h, crop_size, step, thresh_size):
        for left in crop_starts(w, crop_size, step, thresh_size):
            out = os.path.join(output_folder, f"{stem}_s{len(written) + 1:03d}{ext}")
            write_image(out, img[top:top + crop_size, left:left + crop_size], channels="bgr", params=params)
            written.append(out)
    if not written:
        written.skipped.append(path)
    return written


def subimages(input_folder, output_folder, crop_size=480, step=240, thresh_size=0, compression_level=3,
              strip_scale_suffix=False, workers=1):
    """All crops of every input (:class:`Written`; ``skipped`` lists the inputs smaller than one crop)."""
    if crop_size < 1 or step < 1:
        raise DataError(f"crop size ({crop_size}) and step ({step}) must be positive")
    if not 0 <= compression_level <= 9:
        raise DataError(f"PNG compression level {compression_level} must be 0..9")
    paths = input_images(input_folder)
    os.makedirs(output_folder, exist_ok=True)
    func = functools.partial(subimages_one, output_folder=os.fspath(output_folder), crop_size=crop_size, step=step,
                             thresh_size=thresh_size, compression_level=compression_level,
                             strip_scale_suffix=strip_scale_suffix)
    return Written.merge(run_parallel(func, paths, workers, "subimages"))


# ------------------------------------------------------------------------------------------- meta-info
def meta_info_lines(folders, roots=None, check=False):
    """Image paths under each folder (recursive, sorted), relative to its root, with ``/`` separators.

    ``roots`` defaults to each folder's parent, so lines read ``folder_name/sub/img.png`` like Real-ESRGAN's.
    ``check`` decodes every image (ImageReadError names the first bad one).
    """
    folders = [os.fspath(f) for f in folders]
    if roots is None:
        roots = [os.path.dirname(os.path.abspath(f)) for f in folders]
    if len(roots) == 1 and len(folders) > 1:
        roots = list(roots) * len(folders)
    if len(roots) != len(folders):
        raise DataError(f"got {len(folders)} input folders but {len(roots)} roots; give one root or one per folder")
    lines = []
    for folder, root in zip(folders, roots):
        for path in input_images(folder, recursive=True):
            if check:
                read_raw(path)
            rel = os.path.relpath(path, root)
            if "\n" in rel or "\r" in rel:
                raise DataError(f"file name {path!r} holds a line break and cannot go in a meta-info list; rename it")
            lines.append(rel.replace(os.sep, "/"))
    return lines


def write_meta_info(meta_path, lines):
    """One path per line, UTF-8, ``\\n`` endings; the whole line is the path (spaces kept)."""
    meta_path = os.fspath(meta_path)
    os.makedirs(os.path.dirname(os.path.abspath(meta_path)), exist_ok=True)
    with open(meta_path, "w", encoding="utf-8", newline="\n") as f:
        f.writelines(line + "\n" for line in lines)
    return meta_path


def read_meta_info(meta_path):
    """The list of paths of a meta-info file (line endings removed, empty lines skipped, spaces kept)."""
    meta_path = os.fspath(meta_path)
    try:
        with open(meta_path, encoding="utf-8", newline="") as f:
            text = f.read()
    except FileNotFoundError:
        raise DataError(f"meta-info file {meta_path} does not exist; make it with: "
                        "python tools/prepare_data.py meta_info") from None
    except UnicodeDecodeError:
        raise DataError(f"meta-info file {meta_path} is not UTF-8 text; regenerate it") from None
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    return [line for line in lines if line]


def meta_info(folders, meta_path, roots=None, check=False):
    return write_meta_info(meta_path, meta_info_lines(folders, roots, check))


# ------------------------------------------------------------------------------------------ LQ by bicubic
def mod_crop(img, scale):
    """Crop the bottom/right so both sides are multiples of ``scale`` (BasicSR's ``mod_crop``)."""
    h, w = img.shape[:2]
    return img[:h - h % scale, :w - w % scale]


def lq_one(path, gt_out, lq_out, scale=4, degradation=None, seed=0):
    """Write the mod-cropped GT and its 1/scale LQ as ``{stem}.png`` -> both paths. The LQ is MATLAB bicubic, or with
    ``degradation`` (a preset of common_data.data.degradations) Real-ESRGAN's degradations drawn from a generator
    seeded by ``seed`` and the file name (the same LQ whatever the number of workers); scale 1 keeps the size."""
    img = read_raw(path)
    gt = mod_crop(img, scale)
    if min(gt.shape[:2]) < scale:
        raise DataError(f"image {path} ({img.shape[1]}x{img.shape[0]}) is smaller than the scale {scale}; remove it")
    name = os.path.splitext(os.path.basename(path))[0] + ".png"
    if degradation is None:
        lq = imresize(gt, 1 / scale)
    else:
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        rgb = to_float01(convert_channels(gt, "rgb"))
        lq = np.round(degrade(rgb, {"preset": degradation}, rng, scale) * 255).astype(np.uint8)
        lq = np.ascontiguousarray(lq[:, :, ::-1])  # RGB -> BGR, as write_image takes it
    gt_path, lq_path = os.path.join(gt_out, name), os.path.join(lq_out, name)
    write_image(gt_path, gt, channels="bgr")
    write_image(lq_path, lq, channels="bgr")
    return gt_path, lq_path


def generate_lq(input_folder, gt_out, lq_out, scale=4, workers=1, force=False, degradation=None, seed=0):
    """PaddleGAN animeSR-style pairs: ``gt_out/{stem}.png`` (cropped GT) and ``lq_out/{stem}.png`` (LQ: bicubic, or
    ``degradation``'s preset, see ``lq_one``).

    Non-empty output folders are refused unless ``force`` (then same-named files are overwritten)."""
    if scale < 1 or int(scale) != scale:
        raise DataError(f"scale {scale} must be a positive integer")
    if degradation is not None and degradation not in PRESETS:
        raise DataError(f"--degradation {degradation!r}: one of {', '.join(sorted(PRESETS))}")
    paths = input_images(input_folder)
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise DataError(f"input folder {input_folder} has files with the same name but different extensions "
                        f"({duplicates[0]}.*); outputs are all .png, rename one")
    if os.path.abspath(gt_out) == os.path.abspath(input_folder):
        raise DataError(f"GT output {gt_out} is the input folder; choose another --gt-out")
    check_empty_output(gt_out, force)
    check_empty_output(lq_out, force)
    os.makedirs(gt_out, exist_ok=True)
    os.makedirs(lq_out, exist_ok=True)
    func = functools.partial(lq_one, gt_out=os.fspath(gt_out), lq_out=os.fspath(lq_out), scale=int(scale),
                             degradation=degradation, seed=seed)
    return run_parallel(func, paths, workers, f"LQ x{int(scale)}")

