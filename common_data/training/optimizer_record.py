"""What a checkpoint records of the ``optimizer:`` block, and the check on resume that it is still the same.

An optimizer's saved state means something only for the optimizer that wrote it: Adam's moments for its betas,
SGD's momentum buffer for its momentum, each for its nets. A resume whose config changed one of those gets one
line naming the key and the checkpoint instead of a framework traceback or a silently different optimizer.
Checkpoints written before this record existed resume unchecked.
"""
from common_data.config.loading import to_plain
from common_data.errors import ConfigError

RECORD_KEY = "optimizer_config"
# keys whose change makes a saved optimizer state wrong, with the defaults both frameworks use when absent
STATE_KEYS = {"name": None, "net_names": None, "beta1": 0.9, "beta2": 0.999, "momentum": 0.0, "nesterov": False}


def optimizers_of(block):
    """``{config path: optimizer block}`` of an ``optimizer:`` block (one optimizer, or several by name)."""
    block = to_plain(block or {})
    if "name" in block:
        return {"optimizer": block}
    return {f"optimizer.{name}": sub for name, sub in block.items() if isinstance(sub, dict)}


def optimizer_record(block):
    """The plain-data record of ``block`` stored in checkpoints under ``RECORD_KEY``."""
    return {where: {key: _value(opt, key) for key in STATE_KEYS} for where, opt in optimizers_of(block).items()}


def check_same_optimizer(state, block, path):
    """ConfigError naming the first key of ``block`` (the config's optimizer block) that differs from what the
    checkpoint ``state`` (read from ``path``) recorded; nothing when it recorded nothing."""
    saved = state.get(RECORD_KEY)
    if not isinstance(saved, dict):
        return
    now = optimizer_record(block)
    for where in sorted(set(saved) | set(now)):
        if where not in now or where not in saved:
            raise ConfigError(f"{where}: the optimizer set differs from the one that wrote {path} "
                              f"({', '.join(sorted(saved))}); restore it, or train from --load instead of resuming")
        for key in STATE_KEYS:
            if _same(saved[where].get(key), now[where][key]):
                continue
            raise ConfigError(f"{where}.{key} is {now[where][key]!r} but {path} was trained with "
                              f"{saved[where].get(key)!r}; set -o {where}.{key}={saved[where].get(key)!r} to resume, "
                              f"or start a new run from --load")


def _value(opt, key):
    value = opt.get(key, STATE_KEYS[key])
    return list(value) if isinstance(value, (list, tuple)) else value


def _same(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return float(a) == float(b)
    return (list(a) if isinstance(a, tuple) else a) == (list(b) if isinstance(b, tuple) else b)
