"""Optimizers from PaddleGAN's ``optimizer:`` block (Adam / AdamW / SGD with PaddleGAN's key names)."""
import paddle

from common_data.training.optimizer_options import optimizer_options

# name -> (paddle class, {config key (common_data.training.optimizer_options.OPTIMIZER_KEYS): paddle argument})
_OPTIMIZERS = {
    "Adam": (paddle.optimizer.Adam, {"beta1": "beta1", "beta2": "beta2", "epsilon": "epsilon",
                                     "weight_decay": "weight_decay"}),
    "AdamW": (paddle.optimizer.AdamW, {"beta1": "beta1", "beta2": "beta2", "epsilon": "epsilon",
                                       "weight_decay": "weight_decay"}),
    "SGD": (paddle.optimizer.Momentum, {"momentum": "momentum", "weight_decay": "weight_decay",
                                        "nesterov": "use_nesterov"}),
}


def build_optimizer(cfg, parameters, lr_scheduler, where="optimizer"):
    """One optimizer from a block like ``{name: Adam, beta1: 0.9, beta2: 0.99, weight_decay: 0}``.

    ``net_names`` (which nets' parameters to optimise) is read by the model, not here. Adam's ``weight_decay`` is
    the coupled L2 term (as torch.optim.Adam), AdamW's the decoupled one; SGD is paddle's Momentum (momentum 0 =
    plain SGD).
    """
    name, cfg = optimizer_options(cfg, where)
    cls, keys = _OPTIMIZERS[name]
    kwargs = {keys[k]: v for k, v in cfg.items()}
    if name == "SGD":
        kwargs.setdefault("momentum", 0.0)
    for k in ("beta1", "beta2", "epsilon", "weight_decay", "momentum"):
        if k in kwargs and kwargs[k] is not None:
            kwargs[k] = float(kwargs[k])
    return cls(learning_rate=lr_scheduler, parameters=parameters, **kwargs)
