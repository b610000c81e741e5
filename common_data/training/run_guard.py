"""Clean stops on SIGINT / SIGTERM, one run per run folder, and a usable output_dir (both backends' trainers).

A first SIGINT (Ctrl-C) or SIGTERM (docker stop, Slurm, Kubernetes) asks the trainer to stop after the current
iteration (it saves that iteration's checkpoint); a second one stops at once. The process then exits with
128 + the signal number (130 for SIGINT, 143 for SIGTERM), as a shell reports a process ended by that signal.
"""
import os
import signal
import socket
import threading

from filelock import FileLock, Timeout

from common_data.errors import UserError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SIGNAL_LABELS = {signal.SIGINT: "Ctrl-C (SIGINT)", signal.SIGTERM: "SIGTERM"}
LOCK_NAME = ".run.lock"
OWNER_NAME = ".run.owner"
_received = []  # signal numbers received by this process's stop handlers, in order


def signal_label(signum):
    """``Ctrl-C (SIGINT)`` / ``SIGTERM`` / the signal's name, for log lines."""
    return SIGNAL_LABELS.get(signum) or signal.Signals(signum).name


def last_stop_signal():
    """The last SIGINT / SIGTERM a stop handler received in this process, or None."""
    return _received[-1] if _received else None


def exit_code(default_signum=signal.SIGINT):
    """128 + the last stop signal (130 for Ctrl-C, 143 for SIGTERM); ``default_signum`` when none was seen."""
    return 128 + int(last_stop_signal() or default_signum)


def install_stop_handlers(handler):
    """Call ``handler(signum, frame)`` on SIGINT and SIGTERM in this process (not in forked children).

    Returns the previous handlers for ``restore_handlers``, or None off the main thread (where Python cannot
    install handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    main_pid = os.getpid()
    _received.clear()

    def on_signal(signum, frame):
        if os.getpid() != main_pid:  # a forked loader worker: the main process decides
            return
        _received.append(signum)
        handler(signum, frame)
    return {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}


def restore_handlers(previous):
    """Put back the handlers ``install_stop_handlers`` replaced."""
    for signum, old in (previous or {}).items():
        signal.signal(signum, old)


def check_output_dir(output_dir, key="output_dir"):
    """Create ``output_dir`` if needed and prove it writable; else one UserError naming the config key."""
    path = os.path.abspath(output_dir or "output_dir")
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"{key}: {path} is a file, not a folder; move it away or set -o {key}=ANOTHER_FOLDER")
    probe = os.path.join(path, f".write-test-{os.getpid()}")
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as e:
        raise UserError(f"{key}: cannot write in {path} ({e.strerror or e}); make it writable or set "
                        f"-o {key}=ANOTHER_FOLDER") from None
    return path


class RunFolderLock:
    """An exclusive lock on a run folder for the whole run; a second run on it -> UserError naming the holder.

    ``filelock`` (an OS lock on ``<run_dir>/.run.lock``) is released by the OS when the process ends, however
    it ends; the holder's pid and host are written next to it for the message.
    """

    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.lock = FileLock(os.path.join(run_dir, LOCK_NAME), timeout=0)
        self.owner_path = os.path.join(run_dir, OWNER_NAME)

    def acquire(self):
        try:
            self.lock.acquire()
        except Timeout:
            raise UserError(f"run folder {self.run_dir} is in use by {self.holder()}; wait for that run to end "
                            f"or stop it (two runs in one folder would overwrite each other's files)") from None
        with open(self.owner_path, "w", encoding="utf-8") as f:
            f.write(f"pid {os.getpid()} on host {socket.gethostname()}\n")
        return self

    def holder(self):
        try:
            with open(self.owner_path, encoding="utf-8") as f:
                return f.read().strip() or "another process"
        except OSError:
            return "another process"

    def release(self):
        if self.lock.is_locked:
            self.lock.release()


def lock_run_dir(run_dir):
    """``RunFolderLock(run_dir).acquire()``: hold ``run_dir`` until ``release()`` or the end of the process."""
    return RunFolderLock(run_dir).acquire()
