"""When a training run logs, draws, validates and saves, decided once from the config for both backends' trainers.

Decisions (PaddleGAN's keys; where the two trainers used to differ, the choice is written here):
  length          ``epochs`` (PaddleGAN's by-epoch mode: epochs x optimizer steps per epoch, on both backends;
                  paddle used to refuse it) wins over ``total_iters``; one of them is required.
  ``--debug``     (or ``debug: true``, Real-ESRGAN's debug mode): at most 8 iterations, a log line every step, a
                  snapshot every 4 (so a debug run can be resumed), validation every 4 when ``dataset.test`` exists,
                  a training batch of at most DEBUG_MAX_BATCH (the full Real-ESRNet batch runs a CPU out of memory).
  intervals       ``log_config.interval`` (default 10), ``log_config.visiual_interval`` (PaddleGAN's spelling;
                  ``visual_interval`` too; default off), ``validate.interval`` (default: only at the end),
                  ``snapshot_config.interval`` (default 5000); the last iteration always validates and saves.
  ``validate``    without a ``dataset.test`` block is an error (it used to be skipped on one backend).
"""
from dataclasses import dataclass

from common_data.errors import ConfigError

EARLY_LOG_ITERS = 3  # logged whatever the interval: a long iteration shows its cost and the ETA at once
DEBUG_SETTINGS = dict(total_iters=8, log_interval=1, validate_interval=4, snapshot_interval=4)
# a debug run checks the pipeline, not the batch: the full Real-ESRNet batch (12 x 256 px, 23 blocks) needs about
# 10 GB on a CPU in torch bf16, 14-17 GB in fp32 and 42 GB on Paddle's static step; batch 4: 3.8 / 6.3 / 15 GB
# (benchmarks/config_memory.py, README)
DEBUG_MAX_BATCH = 4
DEFAULT_LOG_INTERVAL = 10
DEFAULT_SNAPSHOT_INTERVAL = 5000


@dataclass
class RunPlan:
    """The schedule of one run; ``total_iters`` is None until ``set_epoch_length`` when the length is in epochs."""

    total_iters: int | None
    epochs: int | None
    log_interval: int
    visual_interval: int  # 0: no training strips
    validate: bool
    validate_interval: int  # 0: only at the end
    snapshot_interval: int
    accumulate_steps: int
    debug: bool

    @classmethod
    def from_config(cls, cfg, debug=False, evaluate_only=False):
        """The plan of ``cfg`` (a loaded config); ``debug``: the command line's ``--debug``."""
        debug = bool(debug or cfg.get("debug", False))
        log_cfg = cfg.get("log_config") or {}
        val_cfg = cfg.get("validate") or {}
        has_test = bool((cfg.get("dataset") or {}).get("test"))
        if val_cfg and not has_test:
            raise ConfigError("validate: there is no dataset.test block to validate on; add one (gt_folder / "
                              "lq_folder of held-out images) or remove the validate block")
        epochs, total = _count(cfg, "epochs"), _count(cfg, "total_iters")
        if not (epochs or total or evaluate_only):
            raise ConfigError("total_iters (or epochs) is missing: set how long to train, e.g. -o total_iters=400000")
        plan = cls(total_iters=None if epochs else total, epochs=epochs,
                   log_interval=_count(log_cfg, "interval", "log_config") or DEFAULT_LOG_INTERVAL,
                   visual_interval=_count(log_cfg, "visiual_interval", "log_config") or _count(
                       log_cfg, "visual_interval", "log_config") or 0,
                   validate=bool(val_cfg) and has_test,
                   validate_interval=_count(val_cfg, "interval", "validate") or 0,
                   snapshot_interval=_count(cfg.get("snapshot_config") or {}, "interval", "snapshot_config")
                   or DEFAULT_SNAPSHOT_INTERVAL,
                   accumulate_steps=_count(cfg, "accumulate_steps") or 1, debug=debug)
        if debug:
            plan.total_iters = min(plan.total_iters or DEBUG_SETTINGS["total_iters"], DEBUG_SETTINGS["total_iters"])
            plan.epochs = None
            plan.log_interval = DEBUG_SETTINGS["log_interval"]
            plan.snapshot_interval = DEBUG_SETTINGS["snapshot_interval"]
            plan.validate = has_test
            plan.validate_interval = DEBUG_SETTINGS["validate_interval"] if has_test else 0
        return plan

    def debug_train_block(self, train_block):
        """In debug mode, cap ``train_block.batch_size`` at DEBUG_MAX_BATCH (in place); -> lines for the log."""
        size = train_block.get("batch_size")
        if not self.debug or not isinstance(size, int) or size <= DEBUG_MAX_BATCH:
            return []
        train_block["batch_size"] = DEBUG_MAX_BATCH
        return [f"debug: dataset.train.batch_size {size} -> {DEBUG_MAX_BATCH} (a debug run checks the pipeline; "
                f"the full batch runs without --debug)"]

    def steps_per_epoch(self, batches_per_epoch):
        """Optimizer steps (iterations) in an epoch of ``batches_per_epoch`` batches, ``accumulate_steps`` each."""
        return max(1, batches_per_epoch // self.accumulate_steps)

    def set_epoch_length(self, batches_per_epoch):
        """With ``epochs``: total_iters = epochs x ``steps_per_epoch``."""
        if self.epochs:
            self.total_iters = self.epochs * self.steps_per_epoch(batches_per_epoch)
        return self.total_iters

    def log_due(self, it):
        """A log line at the first EARLY_LOG_ITERS iterations (a first ETA within a minute), then every
        ``log_interval``."""
        return it <= EARLY_LOG_ITERS or it % self.log_interval == 0

    def validate_due(self, it):
        return self.validate and ((self.validate_interval and it % self.validate_interval == 0)
                                  or it == self.total_iters)

    def snapshot_due(self, it):
        return it % self.snapshot_interval == 0 or it == self.total_iters


def _count(block, key, where=None):
    """A positive whole number under ``key`` of ``block``, or None when absent; else one ConfigError."""
    value = block.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where + '.' if where else ''}{key} must be a positive whole number, got {value!r}")
    return value
