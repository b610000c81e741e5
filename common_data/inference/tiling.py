"""Seam-free tiled inference on numpy arrays, for any ``forward(np NCHW float32) -> np NCHW`` callable.

Real-ESRGAN's scheme: the image is cut into ``tile`` x ``tile`` pieces; each is run with ``tile_pad`` extra input
pixels of context on every side (clipped at the image border) and only its own part of the output is kept. When
``tile_pad`` covers the network's effective receptive field the result equals the untiled one to float rounding.
Models that pixel-unshuffle their input (x2 / x1 RRDBNet) need tiles aligned to the unshuffle factor
(``multiple``); ``tile`` and ``tile_pad`` are rounded up to it.
"""
import numpy as np

from common_data.errors import UserError


class NonFiniteOutputError(UserError):
    """The network gave NaN or Inf (broken weights, or an overflow); callers add the image and the model."""


def round_up(value, multiple):
    return -(-int(value) // multiple) * multiple


def check_tile(tile, tile_pad):
    """One-line errors for impossible tile settings (``tile`` 0 means no tiling)."""
    if tile < 0 or tile_pad < 0:
        raise UserError(f"--tile {tile} / --tile_pad {tile_pad}: must not be negative")
    if 0 < tile < tile_pad:
        raise UserError(f"--tile {tile} is smaller than --tile_pad {tile_pad}: use a tile of at least "
                        f"{tile_pad} pixels (or --tile 0 for no tiling)")


def tile_boxes(height, width, tile):
    """(y0, y1, x0, x1) of the tiles covering an image, row by row."""
    return [(y, min(y + tile, height), x, min(x + tile, width))
            for y in range(0, height, tile) for x in range(0, width, tile)]


def tiled_forward(forward, x, scale, tile, tile_pad=10, multiple=1, progress=None):
    """Run ``forward`` on ``x`` (NCHW) tile by tile; ``scale`` is the network's integer up-scaling factor.

    ``tile`` 0 (or a tile covering the image) runs the whole image at once. ``progress(done, total)`` is called
    after each tile when given.
    """
    check_tile(tile, tile_pad)
    n, _, height, width = x.shape
    if tile == 0 or (tile >= height and tile >= width):
        return forward(x)
    tile, tile_pad = round_up(tile, multiple), round_up(tile_pad, multiple)
    boxes = tile_boxes(height, width, tile)
    out = None
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        py0, px0 = max(y0 - tile_pad, 0), max(x0 - tile_pad, 0)
        py1, px1 = min(y1 + tile_pad, height), min(x1 + tile_pad, width)
        piece = forward(np.ascontiguousarray(x[:, :, py0:py1, px0:px1]))
        if piece.shape[2:] != ((py1 - py0) * scale, (px1 - px0) * scale):
            raise UserError(f"the model turned a {py1 - py0}x{px1 - px0} tile into {piece.shape[2]}x{piece.shape[3]}"
                            f", not x{scale}; check the model's scale")
        if out is None:
            out = np.empty((n, piece.shape[1], height * scale, width * scale), piece.dtype)
        oy, ox = (y0 - py0) * scale, (x0 - px0) * scale
        out[:, :, y0 * scale:y1 * scale, x0 * scale:x1 * scale] = \
            piece[:, :, oy:oy + (y1 - y0) * scale, ox:ox + (x1 - x0) * scale]
        if progress:
            progress(i + 1, len(boxes))
    return out


def upscale_image(forward, img, scale, tile=0, tile_pad=10, pre_pad=0, multiple=1, progress=None):
    """HxWxC float32 image in [0, 1] -> (H*scale)x(W*scale)xC float32 clipped to [0, 1].

    ``pre_pad`` reflect-pads the bottom/right before the network and crops after (Real-ESRGAN's --pre_pad).
    A NaN or Inf in the output raises ``NonFiniteOutputError`` (clipping would make it black or white).
    ``progress(done, total)`` is called after each tile.
    """
    if pre_pad < 0:
        raise UserError(f"--pre_pad {pre_pad}: must not be negative")
    height, width = img.shape[:2]
    x = np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)
    if pre_pad:
        mode = "reflect" if min(height, width) > pre_pad else "symmetric"
        x = np.pad(x, ((0, 0), (0, 0), (0, pre_pad), (0, pre_pad)), mode=mode)
    out = tiled_forward(forward, x, scale, tile, tile_pad, multiple, progress)
    out = out[0, :, :height * scale, :width * scale].transpose(1, 2, 0)
    if not np.isfinite(out).all():
        raise NonFiniteOutputError(f"the model's output holds {np.isnan(out).sum()} NaN and {np.isinf(out).sum()} "
                                   "Inf values")
    return np.clip(out, 0.0, 1.0)
