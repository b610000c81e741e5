"""``python paced_main.py [tools/main.py arguments]``: tools/main.py with every training batch delayed by
``PACE_SECONDS`` (default 0.15 s) after it is read.

The fault tests signal or kill a run "at iteration N"; a tiny net on a CPU with bf16 finishes all 12 iterations in
well under a second, before the signal lands. The delay (outside the optimizer update; it changes no number) makes
every iteration outlast the test's reaction. The hook lives here, in the tests, and not in the trainer.
"""
import os
import runpy
import sys
import time

from common_data.training import trainer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, "tools", "main.py")
PACE_SECONDS = float(os.environ.get("PACE_SECONDS", "0.15"))


class PacedIterLoader(trainer.IterLoader):
    def __next__(self):
        batch = super().__next__()
        time.sleep(PACE_SECONDS)
        return batch


trainer.IterLoader = PacedIterLoader
sys.argv = [MAIN] + sys.argv[1:]
runpy.run_path(MAIN, run_name="__main__")
