"""MATLAB ``imresize(img, scale, 'bicubic')``: Keys cubic (a = -0.5), antialiased when shrinking.

Same index/weight computation as MATLAB (and BasicSR's ``calculate_weights_indices``): output pixel
``x`` (1-based) looks at input coordinate ``u = x / scale + 0.5 * (1 - 1 / scale)``; when shrinking
with antialiasing the kernel is stretched by ``1 / scale``; rows are normalised to sum to 1 and
out-of-range taps are mirrored (symmetric padding, edge pixel repeated). Each axis becomes a sparse
``out x in`` matrix applied with one matrix product, the axis with the smaller scale first (MATLAB's
order). Unsigned integer images are rounded and clipped after each axis, as MATLAB's mex does.
"""
import math

import numpy as np
from scipy import sparse

KERNEL_WIDTH = 4.0


def cubic(x, a=-0.5):
    """Keys' cubic convolution kernel (MATLAB uses a = -0.5)."""
    ax = np.abs(np.asarray(x, np.float64))
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (a + 2) * ax3 - (a + 3) * ax2 + 1
    far = a * ax3 - 5 * a * ax2 + 8 * a * ax - 4 * a
    return np.where(ax <= 1, near, np.where(ax <= 2, far, 0.0))


def resize_matrix(in_length, out_length, scale, antialiasing=True):
    """Sparse ``(out_length, in_length)`` CSR matrix M so that ``M @ signal`` resizes one axis."""
    shrink_aa = scale < 1 and antialiasing
    width = KERNEL_WIDTH / scale if shrink_aa else KERNEL_WIDTH
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    indices = left[:, None] + np.arange(taps)[None, :]  # 1-based input positions
    distance = u[:, None] - indices
    weights = scale * cubic(distance * scale) if shrink_aa else cubic(distance)
    weights /= weights.sum(axis=1, keepdims=True)
    # Symmetric padding for any overshoot: the sequence 1..n, n..1 repeated (MATLAB's aux trick).
    mirror = np.concatenate([np.arange(in_length), np.arange(in_length - 1, -1, -1)])
    columns = mirror[np.mod(indices.astype(np.int64) - 1, 2 * in_length)]
    rows = np.repeat(np.arange(out_length), taps)
    m = sparse.coo_matrix((weights.ravel(), (rows, columns.ravel())), shape=(out_length, in_length))
    return m.tocsr()  # duplicates (mirrored taps) are summed


def _output_size(shape_hw, scale, output_shape):
    if (scale is None) == (output_shape is None):
        raise ValueError("imresize needs exactly one of scale or output_shape")
    if output_shape is not None:
        out_hw = tuple(int(v) for v in output_shape[:2])
        scales = tuple(o / i for o, i in zip(out_hw, shape_hw))
    else:
        scales = tuple(float(s) for s in np.broadcast_to(np.asarray(scale, np.float64), (2,)))
        out_hw = tuple(math.ceil(i * s) for i, s in zip(shape_hw, scales))
    if min(out_hw) < 1 or min(scales) <= 0:
        raise ValueError(f"imresize: output size {out_hw} from input {shape_hw} is empty")
    return out_hw, scales


def imresize(img, scale=None, output_shape=None, antialiasing=True):
    """Resize an HxW or HxWxC array like MATLAB's bicubic ``imresize``.

    ``scale``: a number or (scale_h, scale_w); output size is ``ceil(in * scale)``.
    ``output_shape``: (out_h, out_w); the scale per axis is then ``out / in``.
    Float input keeps its float dtype (no clipping); integer input (uint8, uint16) is rounded and clipped.
    """
    img = np.asarray(img)
    if img.ndim not in (2, 3):
        raise ValueError(f"imresize expects HxW or HxWxC, got shape {img.shape}")
    out_hw, scales = _output_size(img.shape[:2], scale, output_shape)
    integer = img.dtype.kind in "ui"
    out = img.astype(np.float64)
    for axis in sorted((0, 1), key=lambda a: scales[a]):  # stable: H first on ties, as MATLAB
        m = resize_matrix(out.shape[axis], out_hw[axis], scales[axis], antialiasing)
        moved = np.moveaxis(out, axis, 0)
        flat = m @ moved.reshape(moved.shape[0], -1)
        out = np.moveaxis(flat.reshape((out_hw[axis],) + moved.shape[1:]), 0, axis)
        if integer:
            out = _round_clip(out, img.dtype)
    if integer:
        return out.astype(img.dtype)
    return out.astype(img.dtype if img.dtype.kind == "f" else np.float64)


def _round_clip(x, dtype):
    """MATLAB's conversion to an unsigned integer class: round half away from zero, saturate."""
    info = np.iinfo(dtype)
    return np.clip(np.sign(x) * np.floor(np.abs(x) + 0.5), info.min, info.max)
