"""Closed forms of the learning-rate schedules both backends' ``lr_scheduler.py`` wrap (stepped per iteration)."""
import math

from common_data.errors import ConfigError


def restart_periods(periods, restart_weights=None):
    """Checked ``(periods, restart_weights, cumulative_period)`` of CosineAnnealingRestartLR (weights default 1)."""
    periods_ = [int(p) for p in periods]
    weights = [1.0] * len(periods_) if restart_weights is None else list(restart_weights)
    if len(weights) != len(periods_):
        raise ConfigError(f"lr_scheduler.restart_weights has {len(weights)} entries but periods has {len(periods_)}")
    if not periods_ or min(periods_) <= 0:
        raise ConfigError(f"lr_scheduler.periods must be positive integers, got {periods!r}")
    return periods_, weights, [sum(periods_[:i + 1]) for i in range(len(periods_))]


def cosine_restart_lr(step, base_lr, eta_min, periods, restart_weights, cumulative_period):
    """Cosine annealing from ``base_lr * w_i`` to ``eta_min`` over each period, restarting after it.

    At step ``t`` inside period ``i`` (cumulative end ``c_i``, ``t <= c_i``, PaddleGAN/BasicSR convention):
    ``lr = eta_min + w_i * 0.5 * (base_lr - eta_min) * (1 + cos(pi * (t - c_{i-1}) / p_i))``. Steps beyond the
    last period keep its end value.
    """
    step = min(step, cumulative_period[-1])
    idx = next(i for i, end in enumerate(cumulative_period) if step <= end)
    start = cumulative_period[idx - 1] if idx else 0
    cos = math.cos(math.pi * (step - start) / periods[idx])
    return eta_min + restart_weights[idx] * 0.5 * (base_lr - eta_min) * (1 + cos)


def linear_decay_factor(step, start_epoch, decay_epochs, iters_per_epoch=1):
    """PaddleGAN's LinearDecay: factor 1 until ``start_epoch``, then linear to 0 over ``decay_epochs``."""
    epoch = step // iters_per_epoch
    return 1.0 - max(0, epoch + 1 - start_epoch) / float(decay_epochs + 1)
