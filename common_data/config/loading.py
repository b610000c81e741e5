"""One YAML schema for both backends (PaddleGAN's), ``-o a.b.c=value`` overrides and up-front validation."""
import difflib
import logging
import os
import re

import yaml

from common_data.errors import ConfigError

# Top-level keys of PaddleGAN's schema plus ours; anything else is a typo.
TOP_LEVEL_KEYS = {
    "total_iters": int, "epochs": int, "output_dir": str, "min_max": (list, tuple, str), "model": dict,
    "dataset": dict, "lr_scheduler": dict, "optimizer": dict, "validate": dict, "log_config": dict,
    "snapshot_config": dict, "export_model": list, "enable_visualdl": bool, "backend": str, "seed": int,
    "is_train": bool, "image_num": int, "find_unused_parameters": bool, "amp": bool, "amp_level": str,
    "accumulate_steps": int, "debug": bool, "profiler_options": (str, type(None)), "precision": str,
}
# Keys that an override may add even when the file does not have them.
ADDABLE_TOP_LEVEL = set(TOP_LEVEL_KEYS)
# PaddleGAN keys accepted so its configs load, but read by nothing here: loading says so once.
IGNORED_KEYS = ("amp_level", "profiler_options", "image_num", "is_train")
SIZE_HINT = "the network's size, e.g. nf 64, nb 23, gc 32 (num_feat, num_block, num_grow_ch)"
OFF_HINT = "remove the key to turn it off"
# Integer keys: dotted key -> (lowest allowed value, how to fix it). true/false are not integers; ~ leaves the default.
INT_RULES = {
    "total_iters": (1, "the number of training iterations, e.g. 50000"),
    "epochs": (1, "the number of passes over the data"),
    "accumulate_steps": (1, "1 steps the optimizer after every batch"),
    "seed": (0, "any whole number from 0"),
    **{f"model.generator.{k}": (1, SIZE_HINT) for k in ("nf", "nb", "gc", "num_feat", "num_block", "num_grow_ch")},
    **{f"model.generator.{k}": (1, "3 for RGB") for k in ("in_nc", "out_nc", "num_in_ch", "num_out_ch")},
    "model.discriminator.num_feat": (1, "the discriminator's width, e.g. 64"),
    **{f"model.discriminator.{k}": (1, "3 for RGB") for k in ("in_channels", "num_in_ch")},
    "dataset.train.batch_size": (1, "images per batch, e.g. 16"),
    "dataset.test.batch_size": (1, "1 validates one image at a time"),
    "dataset.train.num_workers": (0, "0 loads data in the main process"),
    "dataset.test.num_workers": (0, "0 loads data in the main process"),
    "log_config.interval": (1, "log every N iterations, e.g. 10"),
    "log_config.visiual_interval": (1, f"save a training strip every N iterations, or {OFF_HINT}"),
    "log_config.visual_interval": (1, f"save a training strip every N iterations, or {OFF_HINT}"),
    "snapshot_config.interval": (1, "save a checkpoint every N iterations, e.g. 5000"),
    "validate.interval": (1, f"validate every N iterations, or {OFF_HINT} (validation still runs at the end)"),
}
RRDBNET_DEFAULT_SCALE = 4  # RRDBNet's scale when the generator block does not say
MAX_YAML_VALUES = 100_000  # values a config may hold once its aliases are expanded (a real one holds under 1000)
BACKENDS = ("paddle", "torch")
DEMO_HINT = "make it with: python tools/make_demo_data.py --output data/animeSR"


class YamlLoader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-4`` / ``2E5`` as floats (YAML 1.1 wants a dot; PaddleGAN's loader
    ``literal_eval``s such strings, so its configs mean floats there)."""

    def get_single_node(self):
        """The document's node graph, refused before anything is built when aliases make it huge or recursive."""
        node = super().get_single_node()
        if node is not None:
            expanded_size(node, {}, set())
        return node


class YamlAliasError(yaml.YAMLError):
    """Aliases that expand to too many values ("billion laughs") or refer to themselves."""


def expanded_size(node, sizes, open_nodes):
    """Number of values ``node`` stands for with every alias expanded, counted without expanding (memo by node)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        mark = node.start_mark
        raise YamlAliasError(f"the value at line {mark.line + 1}, column {mark.column + 1} contains itself through "
                             "an alias (&name ... *name); write the value out without the recursion")
    if isinstance(node, yaml.ScalarNode):
        return 1
    open_nodes.add(key)
    children = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
    total = 1 + sum(expanded_size(child, sizes, open_nodes) for child in children)
    open_nodes.discard(key)
    if total > MAX_YAML_VALUES:
        raise YamlAliasError(f"aliases (*name) expand to more than {MAX_YAML_VALUES} values; a config never needs "
                             "that many: write the values out or use fewer aliases")
    sizes[key] = total
    return total


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


def read_text(path):
    """The file as UTF-8 text; any other encoding -> one line with the offset of the first bad byte."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}); "
                          "save the file as UTF-8") from None


def load_config(path, overrides=(), check_paths=True):
    """Read a YAML config, apply ``key.sub=value`` overrides, validate; returns an AttrDict."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = parse_yaml(read_text(path))
    except YamlAliasError as e:
        raise ConfigError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
    except RecursionError:
        raise ConfigError(f"{path}: values nested too deeply to be a config; flatten the file") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    cfg = to_attrdict(raw)
    for item in overrides or ():
        apply_override(cfg, item)
    validate(cfg, source=path, check_paths=check_paths)
    warn_ignored_keys(cfg, path)
    cfg.setdefault("config_name", os.path.splitext(os.path.basename(path))[0])
    return cfg


def warn_ignored_keys(cfg, source):
    """One warning line naming the PaddleGAN keys that nothing here reads."""
    ignored = [k for k in IGNORED_KEYS if k in cfg]
    if ignored:
        logging.getLogger("esrgan_twin.config").warning(
            f"warning: {source}: {', '.join(ignored)}: PaddleGAN key(s) that nothing here reads; ignored")


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
    except YamlAliasError as e:
        raise ConfigError(f"override {key!r}: {e}") from None
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
    _check_int_rules(cfg, source)
    _check_scales(cfg, source)
    _check_schedule(cfg, source)
    if check_paths:
        check_data_paths(cfg, source)


def lookup(cfg, dotted):
    """The value at ``a.b.c``, or None when a level is missing or not a mapping."""
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int_rules(cfg, source):
    """Every key of ``INT_RULES`` that is set holds an integer at or above its lowest value."""
    for key, (low, fix) in INT_RULES.items():
        value = lookup(cfg, key)
        if value is None:
            continue
        if not _is_int(value):
            raise ConfigError(f"{source}: {key} must be an integer, got {type(value).__name__} {value!r}; {fix}")
        if value < low:
            need = "positive" if low == 1 else f"{low} or more"
            raise ConfigError(f"{source}: {key} must be {need}, got {value}; {fix}")


def _scale_keys(node, prefix):
    """(dotted key, mapping) of ``node`` and of every mapping below it (list items by index, as ``-o`` spells them)."""
    if isinstance(node, dict):
        yield prefix, node
        items = node.items()
    elif isinstance(node, list):
        items = ((str(i), v) for i, v in enumerate(node))
    else:
        return
    for k, v in items:
        yield from _scale_keys(v, f"{prefix}.{k}")


def _check_scales(cfg, source):
    """Every ``scale`` of the data equals the generator's; every ``gt_patch_size`` / ``gt_size`` divides by it."""
    gen = (cfg.get("model") or {}).get("generator")
    gen_scale = None
    if isinstance(gen, dict):
        gen_scale = gen.get("scale", RRDBNET_DEFAULT_SCALE if gen.get("name") == "RRDBNet" else None)
    for phase in ("train", "test"):
        for where, block in _scale_keys((cfg.get("dataset") or {}).get(phase), f"dataset.{phase}"):
            scale = block.get("scale")
            if scale is None:
                continue
            if not _is_int(scale) or scale < 1:
                raise ConfigError(f"{source}: {where}.scale must be a positive integer, got {scale!r}")
            if _is_int(gen_scale) and scale != gen_scale:
                raise ConfigError(f"{source}: {where}.scale is {scale} but model.generator.scale is {gen_scale}; "
                                  "the generator must upscale by the data's scale: make them equal")
            for patch_key in ("gt_patch_size", "gt_size"):
                patch = block.get(patch_key)
                if patch is None:
                    continue
                if not _is_int(patch) or patch < 1:
                    raise ConfigError(f"{source}: {where}.{patch_key} must be a positive integer, got {patch!r}")
                if patch % scale:
                    raise ConfigError(f"{source}: {where}.{patch_key} {patch} is not a multiple of the scale {scale}; "
                                      f"use e.g. {max(scale, patch - patch % scale)}")


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
