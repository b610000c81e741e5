"""Validation on ``dataset.test`` and the LQ | bicubic | SR | GT strips, for the training core."""
import os
from collections import OrderedDict

from ..errors import ConfigError
from common_data.data.imageio import write_image
from common_data.training.logfmt import metrics_line
from common_data.metrics.quality import build_metrics
from common_data.data.visual import chw_to_uint8, make_strip


class Validator:
    """Runs the model's (EMA) generator over the test set; logs, draws and returns ``{metric: value}``."""

    def __init__(self, trainer):
        self.trainer = trainer
        cfg = trainer.cfg
        val_cfg = cfg.get("validate") or {}
        self.metrics = build_metrics(val_cfg.get("metrics")) if val_cfg else {}
        self.save_img = bool(val_cfg.get("save_img", False))
        self.test_cfg = (cfg.get("dataset") or {}).get("test")
        self.loader = None

    def strip(self, index=0):
        """LQ | bicubic | SR | GT strip (uint8 HWC RGB) of item ``index`` of the model's current batch, or None."""
        items = self.trainer.strategy.visuals(self.trainer.model)
        if items.get("output") is None:
            return None
        to_numpy, min_max = self.trainer.backend.to_numpy, self.trainer.min_max
        lq = chw_to_uint8(to_numpy(items["lq"][index]), min_max)
        sr = chw_to_uint8(to_numpy(items["output"][index]), min_max)
        gt = items.get("gt")
        gt = chw_to_uint8(to_numpy(gt[index]), min_max) if gt is not None else None
        return make_strip(lq, sr, gt)

    def run(self, it):
        """Validate as of iteration ``it`` (call on rank 0 only)."""
        if not self.test_cfg:
            raise ConfigError("dataset.test is missing: validation needs a test set (or remove validate:)")
        trainer = self.trainer
        if self.loader is None:
            self.loader = trainer.backend.build_dataloader(self.test_cfg, False, False, trainer.seed)
        for metric in self.metrics.values():
            metric.reset()
        draw = self.save_img or trainer.vdl is not None
        for i, batch in enumerate(self.loader):
            trainer.model.setup_input(batch)
            trainer.model.test_iter(self.metrics)
            if draw:
                self.draw(it, i, len(batch["lq"]))
        results = OrderedDict((name, float(m.accumulate())) for name, m in self.metrics.items())
        if results:
            trainer.log(metrics_line(it, results))
            if trainer.vdl is not None:
                for name, value in results.items():
                    trainer.vdl.add_scalar(f"metric/{name}", value, step=it)
        return results

    def draw(self, it, batch_index, num):
        trainer = self.trainer
        paths = trainer.model.get_image_paths()
        for j in range(num):
            base = os.path.splitext(os.path.basename(paths[j]))[0] if j < len(paths) else f"{batch_index:04d}_{j:04d}"
            strip = self.strip(j)
            if strip is None:
                continue
            if self.save_img:
                write_image(os.path.join(trainer.run_dir, "visual_test", f"iter_{it}_{base}.png"), strip)
            if trainer.vdl is not None:
                trainer.vdl.add_image(f"visual_test/{base}", strip, step=it)
