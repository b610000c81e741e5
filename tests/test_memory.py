"""keep_freed_memory: freed blocks stay mapped (no page faults on the next step) instead of going back to the OS."""
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from common_data.training.memory import keep_freed_memory

    def rss():
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * 4096

    tuned = keep_freed_memory() if sys.argv[1] == 'tuned' else False
    block = np.ones(24 << 20, np.uint8)  # 24 MB: above glibc's default mmap threshold, below the tuned one
    before = rss()
    del block
    print(tuned, (before - rss()) >> 20)
""")


def released_mb(mode):
    out = subprocess.run([sys.executable, "-c", f"ROOT = {ROOT!r}\n" + SCRIPT, mode], capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_block_stays_mapped_only_when_tuned():
    tuned, kept_released = released_mb("tuned")
    assert tuned
    assert kept_released < 4  # the 24 MB stay resident for the next allocation
    assert released_mb("default") == (False, 24)  # glibc's default: munmap'ed at once
