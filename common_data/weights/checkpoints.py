"""Checkpoint file naming, discovery and atomic writes, shared by both backends.

Names follow PaddleGAN: ``iter_{N}_weight.{ext}`` (nets only) and ``iter_{N}_checkpoint.{ext}`` (nets, optimizers,
schedulers, iteration), ext ``pdparams`` for Paddle and ``pth`` for PyTorch.
"""
import errno
import os
import re

from common_data.errors import UserError

EXTENSIONS = {"paddle": "pdparams", "torch": "pth"}
FULL_BELOW = 1 << 20  # bytes: a write that failed with less free space than this failed for lack of it
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

    Disk-full or permission errors leave any previous file intact, remove the temp file and raise one UserError
    line. A full disk is recognised by its errno (paddle.save raises OSError ENOSPC) or, for writers that turn it
    into another exception (torch.save raises RuntimeError), by the free space left when the write failed.
    Other exceptions from ``write_fn`` propagate unchanged, with the temp file removed. Temp files of the same
    target left by a killed writer (another pid) are removed once this write succeeds.
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
    except Exception as e:
        full = disk_full(e, folder)
        _remove_quietly(tmp)
        if full:
            raise UserError(f"cannot save {path}: the disk is full; any previous file there is untouched - free "
                            f"space or set output_dir elsewhere") from None
        if isinstance(e, OSError):
            why = e.strerror or (str(e).splitlines() or [repr(e)])[0]
            raise UserError(f"cannot save {path}: {why}; any previous file there is untouched - fix the "
                            f"permissions of {folder} or set output_dir elsewhere") from None
        raise
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_folder(folder)
    for name in os.listdir(folder):
        if name.startswith(prefix):
            _remove_quietly(os.path.join(folder, name))


def disk_full(error, folder, min_free=FULL_BELOW):
    """Whether ``error`` (or an exception it came from) is ENOSPC / EDQUOT, or ``folder``'s file system has
    less than ``min_free`` bytes left for this user."""
    for _ in range(8):  # the exception and the ones it was raised from
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        error = error.__cause__ or error.__context__ if error is not None else None
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs (Windows) or the folder is gone
        return False
    free = st.f_bfree if hasattr(os, "geteuid") and os.geteuid() == 0 else st.f_bavail
    return free * st.f_frsize < min_free


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
