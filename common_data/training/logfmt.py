"""The training log line, identical for both backends (PaddleGAN's fields plus ETA)."""
import datetime
import math


def format_eta(seconds):
    """Whole seconds as ``H:MM:SS`` (``1 day, H:MM:SS`` past a day), negative -> ``0:00:00``, like PaddleGAN."""
    if not math.isfinite(seconds):
        return "unknown"
    return str(datetime.timedelta(seconds=max(0, int(seconds))))


def log_line(iteration, total_iters, lr, losses, batch_cost=None, reader_cost=None, ips=None):
    """``Iter: 10/100 lr: 2.000e-04 l_pix: 0.12346 batch_cost: 1.00000 sec reader_cost: ... ips: ... eta: 0:01:30``.

    PaddleGAN's trainer line, with losses to 5 decimals (PaddleGAN: 3); the ETA is batch_cost x iterations left.
    """
    parts = [f"Iter: {iteration}/{total_iters}", f"lr: {lr:.3e}"]
    parts += [f"{k}: {float(v):.5f}" for k, v in losses.items()]
    if batch_cost is not None:
        parts.append(f"batch_cost: {batch_cost:.5f} sec")
    if reader_cost is not None:
        parts.append(f"reader_cost: {reader_cost:.5f} sec")
    if ips is not None:
        parts.append(f"ips: {ips:.5f} images/s")
    if batch_cost is not None:
        parts.append(f"eta: {format_eta(batch_cost * (total_iters - iteration))}")
    return " ".join(parts)


def metrics_line(iteration, metrics):
    return f"Iter: {iteration} " + " ".join(f"Metric {k}: {v:.4f}" for k, v in metrics.items())


class TimeAverager:
    """Running mean of durations, with images/s."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.total = 0.0
        self.count = 0
        self.samples = 0

    def record(self, seconds, num_samples=None):
        self.total += seconds
        self.count += 1
        if num_samples:
            self.samples += num_samples

    def average(self):
        return self.total / self.count if self.count else 0.0

    def ips(self):
        return self.samples / self.total if self.total and self.samples else 0.0
