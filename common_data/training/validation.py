"""Validation on ``dataset.test`` and the LQ | bicubic | SR | GT strips, for the training core."""
import os
from collections import OrderedDict

import cv2
import numpy as np

from common_data.data.imageio import write_image
from common_data.data.visual import chw_to_uint8, make_strip
from common_data.errors import ConfigError
from common_data.metrics.quality import build_metrics
from common_data.training.logfmt import metrics_line


class Validator:
    """Runs the model's (EMA) generator over the test set; logs, draws and returns ``{metric: value}``."""

    def __init__(self, trainer):
        self.trainer = trainer
        cfg = trainer.cfg
        val_cfg = cfg.get("validate") or {}
        metrics_cfg, backend_metrics = val_cfg.get("metrics"), trainer.backend.metrics
        self.metrics = build_metrics(metrics_cfg, backend_metrics=backend_metrics) if val_cfg else {}
        self.save_img = bool(val_cfg.get("save_img", False))
        self.test_cfg = (cfg.get("dataset") or {}).get("test")
        self.loader = None
        self.baseline_metrics = build_metrics(metrics_cfg, backend_metrics=backend_metrics) if val_cfg else {}
        self.baseline = None  # {metric: value} of bicubic on the same images, measured with the first validation

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
        measure_baseline = self.baseline is None
        for i, batch in enumerate(self.loader):
            trainer.model.setup_input(batch)
            trainer.model.test_iter(self.metrics)
            if measure_baseline:
                self.bicubic_update(batch)
            if draw:
                self.draw(it, i, len(batch["lq"]))
        results = OrderedDict((name, float(m.accumulate())) for name, m in self.metrics.items())
        if measure_baseline:
            self.baseline = OrderedDict((name, float(m.accumulate())) for name, m in self.baseline_metrics.items())
            if self.baseline:
                trainer.log("bicubic on the same images: " + " ".join(f"{k}: {v:.4f}" for k, v in self.baseline.items()))
        if results:
            trainer.log(metrics_line(it, results))
            if trainer.vdl is not None:
                for name, value in results.items():
                    trainer.vdl.add_scalar(f"metric/{name}", value, step=it)
        return results

    def bicubic_update(self, batch):
        """Add OpenCV-bicubic upscales of the batch's LQ images (vs its GT) to the baseline metrics."""
        if batch.get("gt") is None:
            return
        min_max = self.trainer.min_max

        def to_numpy(x):  # the loaders give numpy (torch) or framework tensors (paddle)
            return x if isinstance(x, np.ndarray) else self.trainer.backend.to_numpy(x)
        lqs, gts = to_numpy(batch["lq"]), to_numpy(batch["gt"])
        for lq, gt in zip(lqs, gts):
            lq, gt = chw_to_uint8(lq, min_max), chw_to_uint8(gt, min_max)
            up = cv2.resize(lq, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_CUBIC)
            for metric in self.baseline_metrics.values():
                metric.update(up, gt)

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
