"""How data-loader workers start and end (both backends' engine/data.py).

Start: ``forkserver`` on Linux. A worker forked from the trainer would share (and, as Python touches objects,
copy) the trainer's whole memory, model and optimizer included: 12-16 GB for the full Real-ESRNet. The fork
server is a fresh interpreter that imports only the backend's data module (``preload``) and forks the workers
from there, so a worker costs a dataset, not a trainer. Datasets travel to it pickled. Workers are persistent
(started once per loader, not once per epoch).

End: a worker's parent is the fork server, which lives as long as any worker holds its "alive" pipe, so a worker
cannot wait for its parent: each worker watches the trainer itself (a pidfd, else a poll each second) and ends at
once when the trainer is gone, however it ended (a SIGKILL included); it also asks the kernel for SIGKILL when its
own parent dies (``PR_SET_PDEATHSIG``). Once the workers are gone the fork server sees its pipe close and exits.
"""
import ctypes
import multiprocessing
import os
import select
import signal
import sys
import threading

START_METHOD = "forkserver"
PERSISTENT = True  # workers started once per loader, not once per epoch (when the trainer's heap is at its peak)
TRAINER_PID_ENV = "ESRGAN_TWIN_TRAINER_PID"  # set by the trainer, inherited by the fork server and its workers
_PR_SET_PDEATHSIG = 1


def worker_context(preload, make_default=False):
    """The multiprocessing context for loader workers (forkserver preloading ``preload``), or None off Linux.

    ``make_default``: also make it this process's default start method (for loaders that take no context).
    """
    if not sys.platform.startswith("linux"):
        return None
    os.environ[TRAINER_PID_ENV] = str(os.getpid())
    context = multiprocessing.get_context(START_METHOD)
    if START_METHOD == "forkserver":  # benchmarks/peak_rss.py sets "fork" to measure what the server saves
        context.set_forkserver_preload(list(preload))
    if make_default and multiprocessing.get_start_method(allow_none=True) != START_METHOD:
        multiprocessing.set_start_method(START_METHOD, force=True)
    return context


def die_with_parent():
    """Ask Linux to SIGKILL this process when its parent dies; exit now if it already has. False off Linux."""
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        ok = libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before the request was in place
        os._exit(1)
    return ok


def exit_with(pid):
    """End this process (``os._exit``) as soon as process ``pid`` has ended, from a daemon thread."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # no pidfd (old kernel, not Linux): poll
        fd = None
    if fd is None and not _exists(pid):
        os._exit(1)

    def watch():
        if fd is not None:
            select.select([fd], [], [])  # readable once the process has exited (zombie or reaped)
        else:
            while _exists(pid):
                threading.Event().wait(1.0)
        os._exit(1)
    threading.Thread(target=watch, name=f"exit-with-{pid}", daemon=True).start()


def _exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def init_worker(worker_id=None):
    """``worker_init_fn`` of both backends: end with the trainer and with the parent; leave Ctrl-C to the trainer (it reaches the
    whole process group; the trainer finishes its iteration, then ends the workers); SIGTERM ends a worker
    quietly (without it a worker's framework prints a fatal-signal report)."""
    die_with_parent()
    trainer = os.environ.get(TRAINER_PID_ENV, "")
    if trainer.isdigit() and int(trainer) != os.getpid():
        exit_with(int(trainer))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
