"""Framework-free image helpers for visuals: CHW float -> HWC uint8, and the LQ / bicubic / SR / GT strip."""
import cv2
import numpy as np


def chw_to_uint8(img, min_max=(0.0, 1.0)):
    """A CHW (or NCHW, first item) float array in ``min_max`` -> HWC uint8 RGB (PaddleGAN's tensor2img)."""
    arr = np.asarray(img, dtype=np.float32)
    if arr.ndim == 4:
        arr = arr[0]
    lo, hi = min_max
    arr = (np.clip(arr, lo, hi) - lo) / (hi - lo)
    arr = np.transpose(arr, (1, 2, 0))
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return (arr * 255.0 + 0.5).astype(np.uint8)


def make_strip(lq, sr, gt=None, labels=True):
    """LQ (nearest-upscaled) | bicubic | SR | GT side by side, all HWC uint8 RGB at SR size."""
    h, w = sr.shape[:2]
    tiles = [cv2.resize(lq, (w, h), interpolation=cv2.INTER_NEAREST),
             cv2.resize(lq, (w, h), interpolation=cv2.INTER_CUBIC), sr]
    names = ["LQ", "bicubic", "SR"]
    if gt is not None:
        tiles.append(gt[:h, :w])
        names.append("GT")
    if labels:
        tiles = [_label(t.copy(), n) for t, n in zip(tiles, names)]
    gap = np.full((h, 4, 3), 255, np.uint8)
    out = [tiles[0]]
    for t in tiles[1:]:
        out += [gap, t]
    return np.concatenate(out, axis=1)


def _label(img, text):
    scale = max(0.35, img.shape[0] / 400)
    cv2.putText(img, text, (4, int(14 * scale / 0.35)), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(img, text, (4, int(14 * scale / 0.35)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return img
