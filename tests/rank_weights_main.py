"""``python rank_weights_main.py BACKEND [tools/main.py arguments]``: tools/main.py, with each rank writing its final
nets to ``run_dir/rank{r}_final.<ext>`` when the trainer closes (the multi-process tests compare the ranks).

Launched under ``torchrun`` / ``paddle.distributed.launch`` in place of tools/main.py; the hook lives here, in the
tests, and not in the trainer.
"""
import importlib
import os
import runpy
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, "tools", "main.py")
EXTENSIONS = {"paddle": "pdparams", "torch": "pth"}

backend = sys.argv.pop(1)
run_module = importlib.import_module(f"{backend}_impl.engine.run")


class RankWeights(run_module.Trainer):
    def close(self):
        if self.run_dir:
            path = os.path.join(self.run_dir, f"rank{self.rank}_final.{EXTENSIONS[backend]}")
            self.backend.save_weights(path, self.model.nets_state())
        super().close()


run_module.Trainer = RankWeights
sys.argv = [MAIN] + sys.argv[1:]
runpy.run_path(MAIN, run_name="__main__")
