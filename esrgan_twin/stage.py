"""One line as a long step of a command starts (an export, a verification) and one as it ends, with its time."""
import contextlib
import sys
import time


@contextlib.contextmanager
def stage(what: str):
    """``what ...`` on stderr now, ``what: done in N s`` when the block ends without an error."""
    print(f"{what} ...", file=sys.stderr, flush=True)
    start = time.monotonic()
    yield
    print(f"{what}: done in {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
