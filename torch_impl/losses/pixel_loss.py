"""Pixel losses with BasicSR semantics: ``loss_weight * reduce(elementwise loss)``."""
import torch
from torch import nn
from torch.nn import functional as F

from common_data.errors import ConfigError

from . import LOSSES

REDUCTIONS = ('none', 'mean', 'sum')


class _PixelLoss(nn.Module):
    def __init__(self, loss_weight=1.0, reduction='mean'):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ConfigError(f"{type(self).__name__}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
        self.loss_weight = loss_weight
        self.reduction = reduction

    def elementwise(self, pred, target):
        raise NotImplementedError

    def forward(self, pred, target):
        loss = self.elementwise(pred, target)
        if self.reduction == 'mean':
            loss = loss.mean()
        elif self.reduction == 'sum':
            loss = loss.sum()
        return self.loss_weight * loss


@LOSSES.register()
class L1Loss(_PixelLoss):
    """Mean absolute error."""

    def elementwise(self, pred, target):
        return F.l1_loss(pred, target, reduction='none')


@LOSSES.register()
class MSELoss(_PixelLoss):
    """Mean squared error."""

    def elementwise(self, pred, target):
        return F.mse_loss(pred, target, reduction='none')


@LOSSES.register()
class CharbonnierLoss(_PixelLoss):
    """Differentiable L1: ``sqrt((pred - target)^2 + eps)``."""

    def __init__(self, loss_weight=1.0, reduction='mean', eps=1e-12):
        super().__init__(loss_weight, reduction)
        self.eps = eps

    def elementwise(self, pred, target):
        return torch.sqrt((pred - target) ** 2 + self.eps)
