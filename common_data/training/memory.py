"""Process-wide allocator settings for training (framework-neutral: both backends' ``run`` call them)."""
import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameter numbers
_TUNED = False


def keep_freed_memory(mmap_threshold=32 << 20, trim_threshold=1 << 30):
    """Stop glibc from handing each freed activation back to the OS; returns whether the settings are in force.

    A training step allocates and frees the same few hundred MB of activations and gradients. With glibc's
    defaults, blocks above the (adaptive) mmap threshold are mmap'ed and munmap'ed every time and the heap top is
    trimmed, so each step page-faults its whole working set again: 10-15 % of a Paddle static oneDNN step and
    ~8 % of a PyTorch step on this machine (benchmarks/train_step.py). Raising the mmap threshold to its 32 MB
    maximum and the trim threshold to 1 GB keeps those pages mapped; the process then holds on to up to about
    1 GB of freed heap. Once per process; a no-op (``False``) off Linux or without glibc.
    """
    global _TUNED
    if _TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl or another libc
        return False
    _TUNED = bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(mallopt(_M_TRIM_THRESHOLD,
                                                                                   int(trim_threshold)))
    return _TUNED
