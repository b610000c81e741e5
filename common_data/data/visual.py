"""Framework-free image helpers for visuals: CHW float -> HWC uint8, and the LQ / bicubic / SR / GT strip."""
import cv2
import numpy as np

from common_data.config.loading import parse_min_max

GAP = 4  # white pixels between tiles of a strip


def chw_to_uint8(img, min_max=(0.0, 1.0)):
    """A CHW (NCHW: first item; HW: grey) float array in ``min_max`` -> HWC uint8 RGB.

    Same numbers as PaddleGAN's ``tensor2img``: clip to ``min_max``, scale to [0, 255], round half to even.
    ``min_max`` may be PaddleGAN's string form ``"(0., 1.)"``.
    """
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 4:
        arr = arr[0]
    elif arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"expected a CHW, NCHW or HW array, got shape {arr.shape}")
    lo, hi = parse_min_max(min_max)
    arr = (np.clip(arr, lo, hi) - lo) / (hi - lo)
    arr = np.transpose(arr, (1, 2, 0))
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.round(arr * 255.0).astype(np.uint8)


def make_strip(lq, sr, gt=None, labels=True):
    """LQ (nearest-upscaled) | bicubic | SR | GT side by side, HWC uint8 RGB at SR size, GAP white columns apart.

    Grey (HxW) tiles become RGB; a GT of another size is cropped / padded with white to the SR size.
    """
    lq, sr = _rgb(lq), _rgb(sr)
    h, w = sr.shape[:2]
    tiles = [cv2.resize(lq, (w, h), interpolation=cv2.INTER_NEAREST),
             cv2.resize(lq, (w, h), interpolation=cv2.INTER_CUBIC), sr]
    names = ["LQ", "bicubic", "SR"]
    if gt is not None:
        gt = _rgb(gt)[:h, :w]
        tiles.append(np.pad(gt, ((0, h - gt.shape[0]), (0, w - gt.shape[1]), (0, 0)), constant_values=255))
        names.append("GT")
    if labels:
        tiles = [_label(t.copy(), n) for t, n in zip(tiles, names)]
    gap = np.full((h, GAP, 3), 255, np.uint8)
    out = [tiles[0]]
    for t in tiles[1:]:
        out += [gap, t]
    return np.concatenate(out, axis=1)


def _rgb(img):
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def _label(img, text):
    """White text with a black outline in the top-left corner, sized to the tile."""
    scale = max(0.35, img.shape[0] / 400)
    org = (4, int(14 * scale / 0.35))
    for color, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness, cv2.LINE_AA)
    return img
