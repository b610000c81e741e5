"""Learning-rate schedules (PaddleGAN's ``lr_scheduler:`` block), stepped once per iteration.

The torch side (torch_impl/engine/lr_scheduler.py) gives the same lr at every iteration.
"""
import math

import paddle

from common_data.errors import ConfigError
from common_data.registry import Registry

LR_SCHEDULERS = Registry("lr_scheduler")


@LR_SCHEDULERS.register()
class CosineAnnealingRestartLR(paddle.optimizer.lr.LRScheduler):
    """Cosine annealing from ``learning_rate * w_i`` to ``eta_min`` over each period, restarting after it.

    At step ``t`` inside period ``i`` (cumulative end ``c_i``, ``t <= c_i``, PaddleGAN/BasicSR convention):
    ``lr = eta_min + w_i * 0.5 * (lr0 - eta_min) * (1 + cos(pi * (t - c_{i-1}) / p_i))``. Steps beyond the last
    period keep its end value. ``restart_weights`` defaults to 1 for every period.
    """

    def __init__(self, learning_rate, periods, restart_weights=None, eta_min=0.0, last_epoch=-1, verbose=False):
        self.periods = [int(p) for p in periods]
        self.restart_weights = [1.0] * len(self.periods) if restart_weights is None else list(restart_weights)
        if len(self.restart_weights) != len(self.periods):
            raise ConfigError(f"lr_scheduler.restart_weights has {len(self.restart_weights)} entries but periods "
                              f"has {len(self.periods)}")
        if not self.periods or min(self.periods) <= 0:
            raise ConfigError(f"lr_scheduler.periods must be positive integers, got {periods!r}")
        self.eta_min = float(eta_min)
        self.cumulative_period = [sum(self.periods[:i + 1]) for i in range(len(self.periods))]
        super().__init__(float(learning_rate), last_epoch, verbose)

    def get_lr(self):
        step = min(self.last_epoch, self.cumulative_period[-1])
        idx = next(i for i, end in enumerate(self.cumulative_period) if step <= end)
        start = self.cumulative_period[idx - 1] if idx else 0
        cos = math.cos(math.pi * (step - start) / self.periods[idx])
        return self.eta_min + self.restart_weights[idx] * 0.5 * (self.base_lr - self.eta_min) * (1 + cos)


@LR_SCHEDULERS.register()
class MultiStepDecay(paddle.optimizer.lr.MultiStepDecay):
    """``lr = learning_rate * gamma ** (number of milestones <= step)`` (paddle's own MultiStepDecay)."""

    def __init__(self, learning_rate, milestones, gamma=0.1, last_epoch=-1, verbose=False):
        super().__init__(float(learning_rate), list(milestones), gamma, last_epoch, verbose)


LR_SCHEDULERS.register(MultiStepDecay, name="MultiStepLR")


@LR_SCHEDULERS.register()
class LinearDecay(paddle.optimizer.lr.LambdaDecay):
    """PaddleGAN's LinearDecay: constant until ``start_epoch``, then linear to 0 over ``decay_epochs``."""

    def __init__(self, learning_rate, start_epoch, decay_epochs, iters_per_epoch=1, last_epoch=-1, verbose=False):
        def factor(step):
            epoch = step // iters_per_epoch
            return 1.0 - max(0, epoch + 1 - start_epoch) / float(decay_epochs + 1)
        super().__init__(float(learning_rate), factor, last_epoch, verbose)


def build_lr_scheduler(cfg, where="lr_scheduler"):
    """Build the scheduler named by ``cfg.name`` (one scheduler shared by all optimizers, as PaddleGAN)."""
    if not cfg:
        raise ConfigError("lr_scheduler is missing: add e.g. {name: MultiStepDecay, learning_rate: 1e-4, "
                          "milestones: [100000], gamma: 0.5}")
    cfg = {k: v for k, v in cfg.items() if k != "iters_per_epoch" or cfg.get("name") == "LinearDecay"}
    return LR_SCHEDULERS.build(cfg, where=where)
