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
    if kind not in ("weight", "checkpoint"):
        raise ValueError(f"kind must be weight or checkpoint, not {kind!r}")
    return f"iter_{iteration}_{kind}.{EXTENSIONS[backend]}"


def parse_checkpoint_name(path):
    """-> (iteration, kind, ext) or None."""
    m = _NAME.match(os.path.basename(path))
    return (int(m.group(1)), m.group(2), m.group(3)) if m else None


def list_checkpoints(folder, kind="checkpoint", backend=None):
    """Complete checkpoints of a run folder, oldest first, as (iteration, path)."""
    if not os.path.isdir(folder):
        return []
    out = []
    for f in os.listdir(folder):
        parsed = parse_checkpoint_name(f)
        if parsed and parsed[1] == kind and (backend is None or parsed[2] == EXTENSIONS[backend]):
            out.append((parsed[0], os.path.join(folder, f)))
    return sorted(out)


def newest_checkpoint(folder, backend=None):
    """Path of the newest complete ``iter_N_checkpoint`` in a folder, or None."""
    found = list_checkpoints(folder, "checkpoint", backend)
    return found[-1][1] if found else None


def atomic_write(path, write_fn):
    """Call ``write_fn(tmp_path)`` then rename over ``path``: a crash never leaves a half-written file.

    Disk-full or permission errors leave any previous file intact and raise one UserError line.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        os.makedirs(folder, exist_ok=True)
        write_fn(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove_quietly(tmp)
        why = "disk full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise UserError(f"cannot save {path}: {why}; the previous checkpoint is untouched - free space or fix "
                        f"permissions of {folder}") from None
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass
