"""Optimizers from PaddleGAN's ``optimizer:`` block (Adam / AdamW / SGD with PaddleGAN's key names)."""
import torch

from common_data.training.optimizer_options import optimizer_options

from .lr_scheduler import learning_rate_of

_OPTIMIZERS = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW, "SGD": torch.optim.SGD}


def build_optimizer(cfg, parameters, lr_scheduler, where="optimizer"):
    """One optimizer from a block like ``{name: Adam, beta1: 0.9, beta2: 0.99, weight_decay: 0}``.

    ``lr_scheduler`` is the ``lr_scheduler:`` config block (or a number): its ``learning_rate`` is the initial lr.
    Torch schedulers wrap the optimizer, so they are built afterwards (engine.lr_scheduler.build_lr_scheduler).
    ``net_names`` is read by the model, not here. Adam's ``weight_decay`` is the coupled L2 term (as paddle's
    Adam), AdamW's the decoupled one; SGD takes ``momentum`` (default 0) and ``nesterov``.
    """
    name, cfg = optimizer_options(cfg, where)
    cls = _OPTIMIZERS[name]
    lr = float(lr_scheduler) if isinstance(lr_scheduler, (int, float)) else learning_rate_of(lr_scheduler)
    num = {k: float(v) for k, v in cfg.items() if k != "nesterov" and v is not None}
    if name == "SGD":
        return cls(parameters, lr=lr, momentum=num.get("momentum", 0.0), weight_decay=num.get("weight_decay", 0.0),
                   nesterov=bool(cfg.get("nesterov", False)))
    kwargs = {"betas": (num.get("beta1", 0.9), num.get("beta2", 0.999)), "eps": num.get("epsilon", 1e-8)}
    if "weight_decay" in num:
        kwargs["weight_decay"] = num["weight_decay"]
    return cls(parameters, lr=lr, **kwargs)
