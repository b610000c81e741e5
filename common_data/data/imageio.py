"""Image I/O for any path (spaces, unicode): 8/16-bit, grey, RGBA; float32 RGB in [0, 1] and back.

OpenCV's ``imread`` cannot open non-ASCII paths on every platform, so bytes are read with Python
and decoded with ``cv2.imdecode``. Before decoding, a file must be a regular file (a FIFO or device is never
opened for reading) and its header (read by Pillow, which does not decode pixels) must claim at most
``pixel_limit()`` pixels: 100 million unless ``$ESRGAN_TWIN_MAX_PIXELS`` (or infer.py's ``--max-pixels``) says
otherwise. JPEGs are turned as their EXIF orientation says, as viewers show them. Only 8- and 16-bit images
are read: float (HDR TIFF, EXR, PFM) or signed pixels have no [0, 1] meaning here and are refused.
"""
import contextlib
import os
import stat
import threading
import warnings

import cv2
import numpy as np
from PIL import Image

from common_data.errors import DataError, ImageReadError, UserError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
MAX_PIXELS = 100_000_000
MAX_PIXELS_ENV = "ESRGAN_TWIN_MAX_PIXELS"
EXIF_ORIENTATION = 0x0112
TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # the EXIF orientations that turn the picture by 90 degrees
_PILLOW_LIMIT = threading.Lock()  # guards our brief change of Pillow's own (global) decompression-bomb limit


def is_image_file(path):
    """True for a name with an image extension that is not hidden (``._x.png`` AppleDouble files, our temp files)."""
    name = os.path.basename(str(path))
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def looks_truncated(data):
    """True when a PNG lacks its IEND chunk or a JPEG's last scan has no end marker.

    Some OpenCV builds decode such files with a warning and a grey or black bottom part; this catches them.
    """
    if data.startswith(b"\x89PNG"):
        return data.rfind(b"IEND") < 0
    if data.startswith(b"\xff\xd8"):
        last_scan = data.rfind(b"\xff\xda")
        return last_scan >= 0 and data.find(b"\xff\xd9", last_scan) < 0
    return False


@contextlib.contextmanager
def quiet_opencv():
    """Silence OpenCV's own ``[ WARN:0@..]`` / ``[ERROR:0@..]`` lines: a bad file is reported once, by us."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        yield
        return
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        logging.setLogLevel(level)


def pixel_limit():
    """The cap on decoded pixels per image: ``$ESRGAN_TWIN_MAX_PIXELS`` if set, else ``MAX_PIXELS`` (100 million)."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return MAX_PIXELS
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise UserError(f"{MAX_PIXELS_ENV}={text!r}: must be a positive whole number of pixels, e.g. 400000000")
    return value


def read_raw(path, max_pixels=None):
    """Decode a file as stored: uint8 or uint16; HxW (grey), HxWx3 (BGR) or HxWx4 (BGRA).

    ``max_pixels`` (default: ``pixel_limit()``) caps width x height as the header claims it, checked before decoding.
    """
    path = os.fspath(path)
    limit = max_pixels or pixel_limit()
    with _open_regular_file(path) as f:
        _check_header(f, path, limit)
        f.seek(0)
        data = f.read()
    flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH if data.startswith(b"\xff\xd8") else cv2.IMREAD_UNCHANGED
    try:  # any flag but IMREAD_UNCHANGED makes OpenCV apply a JPEG's EXIF orientation
        with quiet_opencv():
            img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        img = None
    if img is None or looks_truncated(data):
        raise ImageReadError(f"cannot decode image {path}: not an image or corrupt/truncated; replace or remove it")
    if img.dtype not in (np.uint8, np.uint16):
        raise ImageReadError(f"image {path} holds {img.dtype} pixels; only 8- and 16-bit images are read (float/HDR "
                             "or signed values have no [0, 1] meaning here): convert it to an 8- or 16-bit PNG")
    return img


def _open_regular_file(path):
    """An open binary file, refused before opening unless a regular file (a FIFO would block, /dev/zero never ends)."""
    try:
        _require_regular(path, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # no wait if it became a FIFO meanwhile
    except OSError as e:
        raise ImageReadError(f"cannot read image {path}: {e.strerror}") from None
    f = os.fdopen(fd, "rb")
    info = os.fstat(fd)
    try:
        _require_regular(path, info.st_mode)
    except ImageReadError:
        f.close()
        raise
    if info.st_size == 0:
        f.close()
        raise ImageReadError(f"cannot read image {path}: the file is empty (0 bytes); replace or remove it")
    return f


def _require_regular(path, mode):
    if stat.S_ISREG(mode):
        return
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else
            "not a file")
    raise ImageReadError(f"skipped {path}: it is {kind}, not a regular file; images are read only from files")


def image_size(path):
    """(height, width) of the image ``read_raw`` returns, from the header only (a JPEG's EXIF orientation 5-8 swaps
    the two, as ``read_raw`` turns it); the same one-line errors as ``read_raw``."""
    path = os.fspath(path)
    with _open_regular_file(path) as f:
        width, height = _header_size(f, path)
        f.seek(0)
        if f.read(2) == b"\xff\xd8" and _exif_orientation(f) in TRANSPOSING_ORIENTATIONS:
            width, height = height, width
    return height, width


def _exif_orientation(f):
    """The EXIF orientation tag of the open image ``f`` (1 when absent or unreadable)."""
    f.seek(0)
    try:
        with Image.open(f) as im:
            return int(im.getexif().get(EXIF_ORIENTATION, 1))
    except Exception:  # a broken EXIF block: the decoder ignores it too
        return 1


def _check_header(f, path, limit):
    """Refuse a file whose header Pillow cannot read, or that claims more than ``limit`` pixels."""
    width, height = _header_size(f, path)
    if width * height > limit:
        raise ImageReadError(f"image {path} claims {width}x{height} = {width * height} pixels, over the limit of "
                             f"{limit}; if it is real, raise the limit (infer.py --max-pixels, or {MAX_PIXELS_ENV})")


def _header_size(f, path):
    """(width, height) from the header by Pillow, which opens lazily: no pixel is decoded."""
    with _PILLOW_LIMIT, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pillow_limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # our own limit applies
        try:
            with Image.open(f) as im:
                return im.size
        except Exception:  # Pillow's plugins raise many kinds (OSError, SyntaxError, ValueError...) for junk
            pass
        finally:
            Image.MAX_IMAGE_PIXELS = pillow_limit
    raise ImageReadError(f"cannot decode image {path}: not an image or corrupt/truncated, or not an 8/16-bit kind "
                         "(float TIFF, EXR, HDR); replace or remove it")


def max_value(img):
    return 65535.0 if img.dtype == np.uint16 else 255.0 if img.dtype == np.uint8 else 1.0


def read_image(path, channels="rgb"):
    """Read as float32 in [0, 1]: ``rgb`` (HxWx3), ``bgr`` (HxWx3), ``rgba`` (HxWx4) or ``unchanged``."""
    return to_float01(convert_channels(read_raw(path), channels))


def to_float01(img):
    """float32 in [0, 1] from uint8 / uint16 (divided by 255 / 65535); float images pass through as float32."""
    if img.dtype.kind == "f":
        return img.astype(np.float32, copy=False)
    out = img.astype(np.float32)
    np.divide(out, np.float32(max_value(img)), out=out)
    return out


def read_uint8(path, channels="rgb"):
    """Read as uint8 HxWx3 (what PaddleGAN's LoadImageFromFile gives, RGB by default)."""
    raw = read_raw(path)
    if raw.dtype == np.uint16:
        raw = (raw.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    return convert_channels(raw, channels)


def convert_channels(img, channels):
    """Convert a decoded (BGR-ordered) image to the requested channel layout."""
    if channels == "unchanged":
        return img
    if img.ndim == 2:
        img = img[:, :, None]
    c = img.shape[2]
    if channels in ("rgb", "bgr"):
        if c == 1:
            img = np.repeat(img, 3, axis=2)
        elif c == 4:
            img = img[:, :, :3]
        if channels == "bgr":
            return np.ascontiguousarray(img)
        if img.dtype in (np.uint8, np.uint16, np.float32):  # OpenCV's swap is several times numpy's copy
            return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2RGB)
        return np.ascontiguousarray(img[:, :, ::-1])
    if channels == "rgba":
        if c == 1:
            img = np.concatenate([np.repeat(img, 3, axis=2), np.full_like(img, _opaque(img))], axis=2)
        elif c == 3:
            img = np.concatenate([img, np.full_like(img[:, :, :1], _opaque(img))], axis=2)
        return np.ascontiguousarray(img[:, :, [2, 1, 0, 3]])
    raise ValueError(f"channels must be rgb, bgr, rgba or unchanged, not {channels!r}")


def _opaque(img):
    return 1.0 if img.dtype.kind == "f" else np.iinfo(img.dtype).max


def to_uint(img, dtype=np.uint8):
    """float [0, 1] -> uint8/uint16 with rounding and clipping."""
    m = np.iinfo(dtype).max
    return np.clip(np.asarray(img, np.float32) * m + 0.5, 0, m).astype(dtype)


def write_image(path, img, channels="rgb", params=None, dtype=np.uint8):
    """Write an image; float arrays are taken as [0, 1] and saved as ``dtype`` (uint8, or uint16 for 16-bit PNG).

    ``channels`` names the layout of ``img`` (``rgb``, ``rgba``, ``bgr``, ``gray``); a 4-channel ``rgb`` image is
    taken as RGBA. Folders are made; the file appears complete or not at all.
    """
    path = os.fspath(path)
    data = encode_image(path, img, channels, params, dtype)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}{os.path.splitext(path)[1]}")
    try:
        os.makedirs(folder, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise UserError(f"cannot write image {path}: {e.strerror or e}; check free space and permissions") from None


def encode_image(path, img, channels="rgb", params=None, dtype=np.uint8):
    """The bytes ``write_image`` would write to ``path`` (its extension picks the format)."""
    arr = np.asarray(img)
    if arr.dtype.kind == "f":
        arr = to_uint(arr, dtype)
    elif arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 3 and channels in ("rgb", "rgba"):
        if arr.shape[2] == 4:
            arr = arr[:, :, [2, 1, 0, 3]]
        elif arr.shape[2] == 3:
            arr = arr[:, :, ::-1]
    ext = os.path.splitext(os.fspath(path))[1] or ".png"
    try:
        ok, buf = cv2.imencode(ext, np.ascontiguousarray(arr), params or [])
    except cv2.error:
        ok = False
    if not ok:
        raise ImageReadError(f"cannot encode image for {path}: extension {ext!r} with a {arr.dtype} array of shape "
                             f"{arr.shape} is not supported; use .png, .jpg, .bmp, .tif or .webp")
    return buf.tobytes()


def list_images(folder, recursive=False):
    """Sorted image file paths in a folder (optionally recursive); hidden files are skipped."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise DataError(f"image folder {folder} does not exist or is not a folder; check the path")
    out = []
    if recursive:
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            out += [os.path.join(root, f) for f in files if is_image_file(f)]
    else:
        out = [os.path.join(folder, f) for f in os.listdir(folder) if is_image_file(f)]
    return sorted(out)
