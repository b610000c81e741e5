"""PaddleGAN's ``optimizer:`` block, checked without a framework; the backends map the keys to their optimizers."""
from common_data.errors import ConfigError

# optimizer name -> the config keys it takes (PaddleGAN's names)
OPTIMIZER_KEYS = {
    "Adam": ("beta1", "beta2", "epsilon", "weight_decay"),
    "AdamW": ("beta1", "beta2", "epsilon", "weight_decay"),
    "SGD": ("momentum", "weight_decay", "nesterov"),
}


def optimizer_options(cfg, where="optimizer"):
    """``(name, {key: value})`` of an optimizer block, without ``net_names`` (read by the model) and
    ``learning_rate`` (the lr comes from the scheduler block); an unknown name or key is a ConfigError."""
    cfg = dict(cfg)
    cfg.pop("net_names", None)
    name = cfg.pop("name", None)
    if name not in OPTIMIZER_KEYS:
        raise ConfigError(f"{where}.name: unknown optimizer {name!r}; use one of {', '.join(OPTIMIZER_KEYS)}")
    cfg.pop("learning_rate", None)
    unknown = sorted(set(cfg) - set(OPTIMIZER_KEYS[name]))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} for {name}; "
                          f"known: {', '.join(OPTIMIZER_KEYS[name])}")
    return name, cfg
