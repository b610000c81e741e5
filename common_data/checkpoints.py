"""Checkpoint file naming, discovery and atomic writes, shared by both backends.

Names follow PaddleGAN: ``iter_{N}_weight.{ext}`` (nets only) and ``iter_{N}_checkpoint.{ext}`` (nets, optimizers,
schedulers, iteration), ext ``pdparams`` for Paddle and ``pth`` for PyTorch.
"""
import errno
import os
import re

from .errors import UserError

EXTENSIONS = {"paddle": "pdparams", "torch": "pth"}
_NAME = re.compile(r"^iter_(\d+)_(weight|checkpoint)\.(pdparams|pth)$")


def checkpoint_name(iteration, kind, backend):
    """``iter_{iteration}_{kind}.{pdparams|pth}``; kind is ``weight`` or ``checkpoint``, backend paddle or torch."""
    if kind not in ("weight", "checkpoint"):
        raise ValueError(f"kind must be weight or checkpoint, not {kind!r}")
    if backend not in EXTENSIONS:
        raise ValueError(f"backend must be one of {', '.join(EXTENSIONS)}, not {backend!r}")
    if isinstance(iteration, bool) or int(iteration) != iteration or iteration < 0:
        raise ValueError(f"iteration must be a non-negative integer, not {iteration!r}")
    return f"iter_{int(iteration)}_{kind}.{EXTENSIONS[backend]}"


def parse_checkpoint_name(path):
    """-> (iteration, kind, ext) or None."""
    m = _NAME.match(os.path.basename(path))
    return (int(m.group(1)), m.group(2), m.group(3)) if m else None


def list_checkpoints(folder, kind="checkpoint", backend=None):
    """Complete checkpoints of a run folder, oldest first, as (iteration, path).

    Temp files of ``atomic_write``, other kinds, other backends and empty (0-byte) files are left out.
    """
    if not os.path.isdir(folder):
        return []
    out = []
    for f in os.listdir(folder):
        parsed = parse_checkpoint_name(f)
        if parsed and parsed[1] == kind and (backend is None or parsed[2] == EXTENSIONS[backend]):
            path = os.path.join(folder, f)
            if os.path.isfile(path) and os.path.getsize(path) > 0:
                out.append((parsed[0], path))
    return sorted(out)


def newest_checkpoint(folder, backend=None):
    """Path of the newest complete ``iter_N_checkpoint`` in a folder, or None."""
    found = list_checkpoints(folder, "checkpoint", backend)
    return found[-1][1] if found else None


def atomic_write(path, write_fn):
    """Call ``write_fn(tmp_path)`` then rename over ``path``: a crash never leaves a half-written file.

    Disk-full or permission errors leave any previous file intact and raise one UserError line; other
    exceptions from ``write_fn`` propagate unchanged, with the temp file removed. Temp files of the same target
    left by a killed writer (another pid) are removed once this write succeeds.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(path)}.tmp-"
    tmp = os.path.join(folder, f"{prefix}{os.getpid()}")
    try:
        os.makedirs(folder, exist_ok=True)
        write_fn(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove_quietly(tmp)
        why = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or (str(e).splitlines() or [repr(e)])[0])
        raise UserError(f"cannot save {path}: {why}; any previous file there is untouched - free space or fix "
                        f"the permissions of {folder}") from None
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_folder(folder)
    for name in os.listdir(folder):
        if name.startswith(prefix):
            _remove_quietly(os.path.join(folder, name))


def _fsync_folder(folder):
    """Make the rename durable (POSIX); harmless where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass
