"""One line as a long step of a command starts (an export, a verification) and one as it ends, with its time."""
import contextlib
import sys
import time


@contextlib.contextmanager
def stage(what: str):
    """``what ...`` now, ``what: done in N s`` when the block ends without an error (stdout, with the results: stderr
    holds errors alone)."""
    print(f"{what} ...", file=sys.stdout, flush=True)
    start = time.monotonic()
    yield
    print(f"{what}: done in {time.monotonic() - start:.1f} s", file=sys.stdout, flush=True)
