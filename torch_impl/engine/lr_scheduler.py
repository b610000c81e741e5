"""Learning-rate schedules (PaddleGAN's ``lr_scheduler:`` block), stepped once per iteration.

Torch schedulers wrap an optimizer, so one scheduler is built per optimizer (all follow the same schedule from
the same ``learning_rate``); paddle_impl/engine/lr_scheduler.py shares one and gives the same lr at every step.
"""
import torch

from common_data.errors import ConfigError
from common_data.training.lr_schedules import cosine_restart_lr, linear_decay_factor, restart_periods
from common_data.registry import Registry

LR_SCHEDULERS = Registry("lr_scheduler")


@LR_SCHEDULERS.register()
class CosineAnnealingRestartLR(torch.optim.lr_scheduler.LRScheduler):
    """Cosine annealing from ``lr0 * w_i`` to ``eta_min`` over each period, restarting after it (BasicSR).

    At step ``t`` inside period ``i`` (cumulative end ``c_i``, ``t <= c_i``):
    ``lr = eta_min + w_i * 0.5 * (lr0 - eta_min) * (1 + cos(pi * (t - c_{i-1}) / p_i))``. Steps beyond the last
    period keep its end value. ``restart_weights`` defaults to 1 for every period.
    """

    def __init__(self, optimizer, periods, restart_weights=None, eta_min=0.0, last_epoch=-1):
        self.periods, self.restart_weights, self.cumulative_period = restart_periods(periods, restart_weights)
        self.eta_min = float(eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [cosine_restart_lr(self.last_epoch, base, self.eta_min, self.periods, self.restart_weights,
                                  self.cumulative_period) for base in self.base_lrs]


@LR_SCHEDULERS.register()
class MultiStepDecay(torch.optim.lr_scheduler.MultiStepLR):
    """``lr = learning_rate * gamma ** (number of milestones <= step)`` (torch's own MultiStepLR)."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        super().__init__(optimizer, [int(m) for m in milestones], float(gamma), last_epoch)

    def state_dict(self):
        state = super().state_dict()
        state["milestones"] = dict(state["milestones"])  # a plain dict loads with torch.load(weights_only=True)
        return state

    def load_state_dict(self, state_dict):
        from collections import Counter
        state = dict(state_dict)
        state["milestones"] = Counter(state.get("milestones", {}))
        super().load_state_dict(state)


LR_SCHEDULERS.register(MultiStepDecay, name="MultiStepLR")


@LR_SCHEDULERS.register()
class LinearDecay(torch.optim.lr_scheduler.LambdaLR):
    """PaddleGAN's LinearDecay: constant until ``start_epoch``, then linear to 0 over ``decay_epochs``."""

    def __init__(self, optimizer, start_epoch, decay_epochs, iters_per_epoch=1, last_epoch=-1):
        def factor(step):
            return linear_decay_factor(step, start_epoch, decay_epochs, iters_per_epoch)
        super().__init__(optimizer, factor, last_epoch)


def learning_rate_of(cfg, where="lr_scheduler"):
    """The initial lr of an ``lr_scheduler`` block."""
    if not cfg:
        raise ConfigError("lr_scheduler is missing: add e.g. {name: MultiStepDecay, learning_rate: 1e-4, "
                          "milestones: [100000], gamma: 0.5}")
    if "learning_rate" not in cfg:
        raise ConfigError(f"{where}.learning_rate is missing: add the initial learning rate, e.g. 1e-4")
    return float(cfg["learning_rate"])


def build_lr_scheduler(cfg, optimizer, where="lr_scheduler"):
    """Build the scheduler named by ``cfg.name`` around ``optimizer``, starting from ``cfg.learning_rate``."""
    lr = learning_rate_of(cfg, where)
    for group in optimizer.param_groups:
        group["lr"] = lr
        group["initial_lr"] = lr
    cfg = {k: v for k, v in cfg.items() if k != "learning_rate"
           and (k != "iters_per_epoch" or cfg.get("name") == "LinearDecay")}
    return LR_SCHEDULERS.build(cfg, where=where, optimizer=optimizer)
