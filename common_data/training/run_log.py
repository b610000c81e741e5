"""The training log of both backends' trainers: ``[YYYY-MM-DD HH:MM:SS] message`` on stdout and in run_dir/log.txt.

Only the main rank writes. Lines logged before the run folder exists (config checks, auto-resume, resume notes) are
printed at once and written to log.txt when ``open(run_dir)`` is called. Plain prints, not ``logging``: a stop
signal's handler logs too, and ``logging``'s locks must not be taken inside a signal handler.
"""
import contextlib
import datetime
import os
import sys

STAMP = "%Y-%m-%d %H:%M:%S"


class RunLog:
    """``info(message)``: one stamped line on stdout and in log.txt (rank 0); ``enabled=False`` for other ranks."""

    def __init__(self, enabled=True):
        self.enabled = enabled
        self.file = None
        self.pending = []
        self.bar = None  # the iteration bar of ``progress`` while one is shown

    def open(self, run_dir):
        """Append to ``run_dir/log.txt`` from now on, after the lines logged so far."""
        if not self.enabled:
            return
        self.file = open(os.path.join(run_dir, "log.txt"), "a", encoding="utf-8")
        self._write(self.pending)
        self.pending = []

    def info(self, message):
        if not self.enabled:
            return
        line = f"[{datetime.datetime.now().strftime(STAMP)}] {message}"
        if self.bar is None:
            print(line, flush=True)
        else:
            from tqdm import tqdm
            with tqdm.external_write_mode(file=sys.stdout):  # the bar steps aside for the line, then redraws
                print(line, flush=True)
        if self.file is None:
            self.pending.append(line)
        else:
            self._write([line])

    @contextlib.contextmanager
    def progress(self, done, total):
        """An updating ``iterations / ETA`` bar between the log lines, on a terminal only (rank 0); yields
        ``advance()``, to call after each iteration."""
        if not self.enabled or not sys.stdout.isatty():
            yield lambda: None
            return
        from tqdm import tqdm
        with tqdm(total=total, initial=done, unit="it", leave=False, dynamic_ncols=True, file=sys.stderr) as bar:
            self.bar = bar
            try:
                yield lambda: bar.update(1)
            finally:
                self.bar = None

    def _write(self, lines):
        for line in lines:
            self.file.write(line + "\n")
        self.file.flush()

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None
