"""Pixel losses with BasicSR semantics: ``loss_weight * reduce(elementwise loss)``."""
import torch
from torch import nn
from torch.nn import functional as F

from common_data.errors import ConfigError

from . import LOSSES

REDUCTIONS = ("none", "mean", "sum")


def reduce_loss(loss, reduction):
    """``loss`` reduced by ``reduction`` (one of ``REDUCTIONS``)."""
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class _PixelLoss(nn.Module):
    def __init__(self, loss_weight=1.0, reduction="mean"):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ConfigError(f"{type(self).__name__}: reduction must be one of {', '.join(REDUCTIONS)}, "
                              f"got {reduction!r}")
        self.loss_weight = loss_weight
        self.reduction = reduction

    def elementwise(self, pred, target):
        raise NotImplementedError

    def forward(self, pred, target):
        return self.loss_weight * reduce_loss(self.elementwise(pred, target), self.reduction)


@LOSSES.register()
class L1Loss(_PixelLoss):
    """Mean absolute error."""

    def elementwise(self, pred, target):
        return F.l1_loss(pred, target, reduction="none")


@LOSSES.register()
class MSELoss(_PixelLoss):
    """Mean squared error."""

    def elementwise(self, pred, target):
        return F.mse_loss(pred, target, reduction="none")


@LOSSES.register()
class CharbonnierLoss(_PixelLoss):
    """Charbonnier loss (a differentiable L1): ``sqrt((pred - target)^2 + eps)``, as BasicSR."""

    def __init__(self, loss_weight=1.0, reduction="mean", eps=1e-12):
        super().__init__(loss_weight, reduction)
        self.eps = eps

    def elementwise(self, pred, target):
        return torch.sqrt(torch.square(pred - target) + self.eps)
