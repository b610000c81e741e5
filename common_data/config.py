"""One YAML schema for both backends (PaddleGAN's), ``-o a.b.c=value`` overrides and up-front validation."""
import difflib
import os
import re

import yaml

from .errors import ConfigError

# Top-level keys of PaddleGAN's schema plus ours; anything else is a typo.
TOP_LEVEL_KEYS = {
    "total_iters": int, "epochs": int, "output_dir": str, "min_max": (list, tuple, str), "model": dict,
    "dataset": dict, "lr_scheduler": dict, "optimizer": dict, "validate": dict, "log_config": dict,
    "snapshot_config": dict, "export_model": list, "enable_visualdl": bool, "backend": str, "seed": int,
    "is_train": bool, "image_num": int, "find_unused_parameters": bool, "amp": bool, "amp_level": str,
    "accumulate_steps": int, "debug": bool, "profiler_options": (str, type(None)),
}
# Keys that an override may add even when the file does not have them.
ADDABLE_TOP_LEVEL = set(TOP_LEVEL_KEYS)
BACKENDS = ("paddle", "torch")
DEMO_HINT = "make it with: python tools/make_demo_data.py --output data/animeSR"


class YamlLoader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` / ``2E5`` as floats (YAML 1.1 wants a dot; PaddleGAN's loader
    ``literal_eval``s such strings, so its configs mean floats there)."""


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def parse_yaml(text):
    """A YAML document or scalar (``-o`` values) with ``YamlLoader``."""
    return yaml.load(text, Loader=YamlLoader)


class AttrDict(dict):
    """A dict whose keys are also attributes (PaddleGAN's ``cfg.model.generator`` style)."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __deepcopy__(self, memo):
        import copy
        return AttrDict({k: copy.deepcopy(v, memo) for k, v in self.items()})


def to_attrdict(obj):
    if isinstance(obj, dict):
        return AttrDict({k: to_attrdict(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return [to_attrdict(v) for v in obj]
    return obj


def to_plain(obj):
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_plain(v) for v in obj]
    return obj


def parse_min_max(value):
    """PaddleGAN writes ``min_max: (0., 1.)``, which YAML reads as a string; -> (lo, hi) floats with lo < hi."""
    try:
        if isinstance(value, str):
            parts = [p for p in value.strip().strip("()[]").split(",") if p.strip()]
        else:
            parts = list(value)
        lo, hi = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(f"min_max: expected two numbers like (0., 1.), got {value!r}") from None
    if not lo < hi:
        raise ConfigError(f"min_max: the first number must be below the second, got {value!r}")
    return lo, hi


def load_config(path, overrides=(), check_paths=True):
    """Read a YAML config, apply ``key.sub=value`` overrides, validate; returns an AttrDict."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            raw = parse_yaml(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    cfg = to_attrdict(raw)
    for item in overrides or ():
        apply_override(cfg, item)
    validate(cfg, source=path, check_paths=check_paths)
    cfg.setdefault("config_name", os.path.splitext(os.path.basename(path))[0])
    return cfg


def apply_override(cfg, item):
    """Apply one ``a.b.c=value`` (value parsed as a YAML scalar or list); the key must exist.

    Addable: any top-level key of the schema (and everything under a block the override adds), and a leaf
    option of a block that has a ``name:`` (e.g. ``model.ema_decay``). List items are addressed by index
    (``dataset.train.preprocess.0.key=lq``).
    """
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected key.sub=value")
    key, value = item.split("=", 1)
    try:
        value = parse_yaml(value)
    except yaml.YAMLError:
        pass
    parts = key.strip().split(".")
    node = cfg
    added = False
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override {key!r}: {'.'.join(parts[:i]) or 'config'} is a list; "
                                  f"use an index below {len(node)}")
            if last:
                node[int(part)] = to_attrdict(value)
            else:
                node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"override {key!r}: {'.'.join(parts[:i])} is not a mapping")
        if part not in node:
            if not (added or (i == 0 and part in ADDABLE_TOP_LEVEL) or last_addable(node, part, last)):
                close = difflib.get_close_matches(part, list(node), n=1)
                hint = f" Did you mean {'.'.join(parts[:i] + [close[0]])!r}?" if close else ""
                raise ConfigError(f"override {key!r}: key {'.'.join(parts[:i + 1])!r} does not exist in the "
                                  f"config.{hint}")
            added = True
        if last:
            node[part] = to_attrdict(value)
        else:
            node = node.setdefault(part, AttrDict())


def last_addable(node, part, last):
    """Leaf options of a named block (e.g. ``model.ema_decay``) may be added by an override."""
    return last and "name" in node


def _type_name(t):
    return " or ".join(x.__name__ for x in t) if isinstance(t, tuple) else t.__name__


def validate(cfg, source="config", check_paths=True):
    """Check schema, consistency and data paths; each failure is one line naming the key."""
    for key, value in cfg.items():
        if key == "config_name":
            continue
        if key not in TOP_LEVEL_KEYS:
            close = difflib.get_close_matches(key, list(TOP_LEVEL_KEYS), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{source}: unknown config key {key!r}.{hint}")
        want = TOP_LEVEL_KEYS[key]
        if value is not None and not isinstance(value, want) or (want is int and isinstance(value, bool)):
            raise ConfigError(f"{source}: key {key!r} must be {_type_name(want)}, got {type(value).__name__} {value!r}")
    if "total_iters" not in cfg and "epochs" not in cfg:
        raise ConfigError(f"{source}: missing key 'total_iters'")
    if cfg.get("total_iters") is not None and cfg.total_iters <= 0:
        raise ConfigError(f"{source}: total_iters must be positive, got {cfg.total_iters}")
    backend = cfg.get("backend")
    if backend is not None and backend not in BACKENDS:
        raise ConfigError(f"{source}: backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    for key in ("model", "dataset"):
        if key not in cfg:
            raise ConfigError(f"{source}: missing key {key!r}")
        if not isinstance(cfg[key], dict):
            raise ConfigError(f"{source}: key {key!r} must be a mapping, got {cfg[key]!r}")
    if "name" not in cfg.model:
        raise ConfigError(f"{source}: model.name is missing")
    _check_schedule(cfg, source)
    for sub in ("log_config", "snapshot_config", "validate"):
        block = cfg.get(sub) or {}
        iv = block.get("interval")
        if iv is not None and (not isinstance(iv, int) or isinstance(iv, bool)):
            raise ConfigError(f"{source}: {sub}.interval must be an integer, got {iv!r}")
    if check_paths:
        check_data_paths(cfg, source)


def _int_list(value):
    return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)


def _check_schedule(cfg, source):
    """Restart periods sum to total_iters, restart_weights match them, milestones increase."""
    sched = cfg.get("lr_scheduler")
    if not sched:
        return
    periods = sched.get("periods")
    if periods is not None:
        if not _int_list(periods):
            raise ConfigError(f"{source}: lr_scheduler.periods must be a list of integers, got {periods!r}")
        if cfg.get("total_iters") and sum(periods) != cfg.total_iters:
            raise ConfigError(f"{source}: lr_scheduler.periods sum to {sum(periods)} but total_iters is "
                              f"{cfg.total_iters}; make them equal (e.g. -o lr_scheduler.periods=[{cfg.total_iters}])")
        weights = sched.get("restart_weights")
        if weights is not None and not isinstance(weights, list):
            raise ConfigError(f"{source}: lr_scheduler.restart_weights must be a list like [1, 1], got {weights!r}")
        if weights is not None and len(weights) != len(periods):
            raise ConfigError(f"{source}: lr_scheduler.restart_weights has {len(weights)} entries but periods "
                              f"has {len(periods)}; give one weight per period")
    milestones = sched.get("milestones")
    if milestones is not None:
        if not _int_list(milestones):
            raise ConfigError(f"{source}: lr_scheduler.milestones must be a list of integers, got {milestones!r}")
        if milestones != sorted(milestones):
            raise ConfigError(f"{source}: lr_scheduler.milestones must be increasing, got {milestones!r}")


PATH_KEYS = ("gt_folder", "lq_folder", "dataroot_gt", "dataroot_lq", "meta_info")


def check_data_paths(cfg, source="config", phases=("train", "test")):
    """Every data folder named by ``dataset.<phase>`` exists, else one line naming the key."""
    for phase in phases:
        block = (cfg.get("dataset") or {}).get(phase)
        if not block:
            continue
        for key in PATH_KEYS:
            value = block.get(key)
            if value is None:
                continue
            for p in (value if isinstance(value, list) else [value]):
                if not os.path.exists(p):
                    what = "file" if key == "meta_info" else "folder"
                    raise ConfigError(f"dataset.{phase}.{key}: {what} {p} does not exist; {DEMO_HINT}, "
                                      f"or point the key at your data (-o dataset.{phase}.{key}=PATH)")
