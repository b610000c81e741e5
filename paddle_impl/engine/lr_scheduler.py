"""Learning-rate schedules (PaddleGAN's ``lr_scheduler:`` block), stepped once per iteration.

The torch side (torch_impl/engine/lr_scheduler.py) gives the same lr at every iteration.
"""
import paddle

from common_data.errors import ConfigError
from common_data.training.lr_schedules import cosine_restart_lr, linear_decay_factor, restart_periods
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
        self.periods, self.restart_weights, self.cumulative_period = restart_periods(periods, restart_weights)
        self.eta_min = float(eta_min)
        super().__init__(float(learning_rate), last_epoch, verbose)

    def get_lr(self):
        return cosine_restart_lr(self.last_epoch, self.base_lr, self.eta_min, self.periods, self.restart_weights,
                                 self.cumulative_period)


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
            return linear_decay_factor(step, start_epoch, decay_epochs, iters_per_epoch)
        super().__init__(float(learning_rate), factor, last_epoch, verbose)


def build_lr_scheduler(cfg, where="lr_scheduler"):
    """Build the scheduler named by ``cfg.name`` (one scheduler shared by all optimizers, as PaddleGAN)."""
    if not cfg:
        raise ConfigError("lr_scheduler is missing: add e.g. {name: MultiStepDecay, learning_rate: 1e-4, "
                          "milestones: [100000], gamma: 0.5}")
    cfg = {k: v for k, v in cfg.items() if k != "iters_per_epoch" or cfg.get("name") == "LinearDecay"}
    return LR_SCHEDULERS.build(cfg, where=where)
