"""Hostile config input (issue 11): every bad value is one line naming the key; nothing is ignored or overwritten."""
import importlib.util
import logging
import os
import subprocess
import sys
import types

import pytest
import yaml

from common_data.config import loading as C
from common_data.config.loading import load_config
from common_data.errors import ConfigError
from common_data.registry import Registry
from helpers import paired_crop, paired_preprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, "tools", "main.py")


def base():
    return {
        "total_iters": 4, "output_dir": "out", "min_max": "(0., 1.)", "seed": 1, "accumulate_steps": 1,
        "model": {"name": "ESRGAN", "generator": {"name": "RRDBNet", "nf": 8, "nb": 1, "gc": 4, "scale": 4},
                  "discriminator": {"name": "VGGDiscriminator128", "in_channels": 3, "num_feat": 4},
                  "pixel_criterion": {"name": "L1Loss"}},
        "dataset": {"train": {"name": "SRDataset", "gt_folder": "GT", "lq_folder": "LQ", "scale": 4, "batch_size": 2,
                              "num_workers": 0, "preprocess": paired_preprocess(paired_crop(16))},
                    "test": {"name": "SRDataset", "gt_folder": "GT", "lq_folder": "LQ", "scale": 4,
                             "preprocess": paired_preprocess()}},
        "validate": {"interval": 2}, "log_config": {"interval": 1, "visiual_interval": 2},
        "snapshot_config": {"interval": 2},
    }


def write(tmp_path, cfg, name="c.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def load(tmp_path, *overrides, cfg=None):
    return load_config(write(tmp_path, cfg or base()), overrides, check_paths=False)


def error(func, *args, **kwargs):
    with pytest.raises(ConfigError) as info:
        func(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def load_main():
    return importlib.import_module("esrgan_twin.commands.train")


def test_the_base_config_is_valid(tmp_path):
    assert load(tmp_path).model.generator.gc == 4


# ------------------------------------------------------------------------------------------------ the -o flag
def test_repeated_o_groups_apply_every_override(tmp_path, monkeypatch):
    main = load_main()
    seen = []
    stub = types.ModuleType("paddle_impl.engine.run")
    stub.run = lambda cfg, args: seen.append(cfg) or 0
    monkeypatch.setattr(main, "load_runner", lambda backend: stub.run)
    monkeypatch.setattr(main, "check_data_paths", lambda *a, **k: None)
    path = str(write(tmp_path, base()))
    assert main.main(["-c", path, "-o", "total_iters=6", "-o", "model.generator.nb=2", "seed=3"]) == 0
    assert (seen[0].total_iters, seen[0].model.generator.nb, seen[0].seed) == (6, 2, 3)


def test_negative_seed_flag_is_one_error_line_naming_it(tmp_path, capsys):
    assert load_main().main(["-c", str(write(tmp_path, base())), "--seed", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --seed") and "-1" in err[0]


# ---------------------------------------------------------------------------------------- integer key rules
BAD_INTS = [
    # (override, the key the error must name)
    ("model.generator.nf=0", "model.generator.nf"),
    ("model.generator.gc=-4", "model.generator.gc"),
    ("model.generator.nb=0", "model.generator.nb"),
    ("model.generator.nb=true", "model.generator.nb"),
    ("model.generator.num_feat=0", "model.generator.num_feat"),
    ("model.generator.num_block=0", "model.generator.num_block"),
    ("model.generator.num_grow_ch=0", "model.generator.num_grow_ch"),
    ("model.discriminator.num_feat=0", "model.discriminator.num_feat"),
    ("log_config.interval=0", "log_config.interval"),
    ("log_config.visiual_interval=-1", "log_config.visiual_interval"),
    ("snapshot_config.interval=0", "snapshot_config.interval"),
    ("validate.interval=0", "validate.interval"),
    ("accumulate_steps=0", "accumulate_steps"),
    ("dataset.train.batch_size=0", "dataset.train.batch_size"),
    ("dataset.train.batch_size=false", "dataset.train.batch_size"),
    ("seed=-1", "seed"),
]


@pytest.mark.parametrize("override,key", BAD_INTS, ids=[b[0] for b in BAD_INTS])
def test_bad_integer_is_one_line_naming_the_key_and_the_fix(tmp_path, override, key):
    msg = error(load, tmp_path, override)
    assert f"{key} must be" in msg and ";" in msg.split(f"{key} must be")[1]


@pytest.mark.parametrize("override,key", BAD_INTS, ids=[b[0] for b in BAD_INTS])
def test_each_bad_integer_is_refused_by_its_own_rule(tmp_path, monkeypatch, override, key):
    """Without the key's entry in INT_RULES nothing else in validation catches the value (the rule is needed)."""
    monkeypatch.delitem(C.INT_RULES, key)
    load(tmp_path, override)


def test_total_iters_zero_names_the_key(tmp_path):
    cfg = base()
    assert "total_iters must be positive" in error(load, tmp_path, "total_iters=0", cfg=cfg)


def test_a_null_integer_key_leaves_the_default(tmp_path):
    assert load(tmp_path, "validate.interval=~").validate.interval is None


def test_registry_refuses_true_false_for_a_numeric_option():
    reg = Registry("arch")

    @reg.register()
    class Net:
        def __init__(self, nb=23, use_bias=True):
            self.nb, self.use_bias = nb, use_bias

    msg = error(reg.build, {"name": "Net", "nb": True}, where="model.generator")
    assert "model.generator (Net)" in msg and "'nb' must be a number" in msg
    assert reg.build({"name": "Net", "use_bias": False}).use_bias is False


# -------------------------------------------------------------------------------------------------- scales
def test_gt_patch_size_not_a_multiple_of_the_scale_names_its_key(tmp_path):
    msg = error(load, tmp_path, "dataset.train.preprocess.2.pipeline.0.gt_patch_size=18")
    assert "dataset.train.preprocess.2.pipeline.0.gt_patch_size 18" in msg and "multiple of the scale 4" in msg


def test_realesrgan_gt_size_not_a_multiple_of_the_scale_names_its_key(tmp_path):
    cfg = base()
    cfg["dataset"]["train"] = {"name": "RealESRGANDataset", "dataroot_gt": "GT", "scale": 4, "gt_size": 30}
    assert "dataset.train.gt_size 30" in error(load, tmp_path, cfg=cfg)


def test_generator_scale_other_than_the_data_scale_names_both(tmp_path):
    msg = error(load, tmp_path, "model.generator.scale=2")
    assert "dataset.train.scale is 4" in msg and "model.generator.scale is 2" in msg


def test_rrdbnet_without_a_scale_key_is_taken_as_x4(tmp_path):
    cfg = base()
    del cfg["model"]["generator"]["scale"]
    assert "model.generator.scale is 4" in error(load, tmp_path, "dataset.test.scale=2", cfg=cfg)


# --------------------------------------------------------------------------------------------- hostile YAML
def billion_laughs(levels=9, width=9):
    lines = ['lol0: &lol0 "lol"']
    for i in range(1, levels + 1):
        lines.append(f"lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_before_it_is_expanded(tmp_path):
    """9 levels of 9 aliases stand for 9**9 (387 million) strings; expanding them would not end."""
    path = tmp_path / "bomb.yaml"
    path.write_text(billion_laughs())
    msg = error(load_config, path)
    assert "bomb.yaml" in msg and f"more than {C.MAX_YAML_VALUES} values" in msg


def test_alias_bomb_in_an_override_value_is_refused(tmp_path):
    bomb = "[" + ", ".join(["&a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"] + ["*a"] * 20000) + "]"
    assert "override 'seed'" in error(load, tmp_path, f"seed={bomb}")


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n"], ids=["list", "mapping"])
def test_recursive_alias_is_one_line(tmp_path, text):
    path = tmp_path / "loop.yaml"
    path.write_text(text)
    msg = error(load_config, path)
    assert "loop.yaml" in msg and "line 1" in msg and "contains itself" in msg


def test_ordinary_aliases_still_share_their_values(tmp_path):
    text = yaml.safe_dump(base(), sort_keys=False).replace("total_iters: 4", "total_iters: &n 4") + "epochs: *n\n"
    path = tmp_path / "alias.yaml"
    path.write_text(text)
    cfg = load_config(path, check_paths=False)
    assert cfg.epochs == cfg.total_iters == 4


def test_not_utf8_file_names_the_file_and_the_byte_offset(tmp_path):
    data = yaml.safe_dump(base(), sort_keys=False).encode() + "# r\xe9sum\xe9 of the run\n".encode("latin-1")
    path = tmp_path / "latin1.yaml"
    path.write_bytes(data)
    offset = data.index("\xe9".encode("latin-1"))
    msg = error(load_config, path)
    assert "latin1.yaml" in msg and f"offset {offset}" in msg and "UTF-8" in msg


# ----------------------------------------------------------------------------------- ignored PaddleGAN keys
def test_paddlegan_keys_nothing_reads_are_named_once(tmp_path, caplog):
    cfg = dict(base(), amp_level="O1", is_train=True)
    with caplog.at_level(logging.WARNING, logger="esrgan_twin.config"):
        load(tmp_path, "image_num=4", cfg=cfg)
    records = [r.getMessage() for r in caplog.records if r.name == "esrgan_twin.config"]
    assert len(records) == 1
    assert all(k in records[0] for k in ("amp_level", "is_train", "image_num", "ignored"))


def test_no_warning_without_ignored_keys(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="esrgan_twin.config"):
        load(tmp_path)
    assert not [r for r in caplog.records if r.name == "esrgan_twin.config"]


# ------------------------------------------------------------------------------------ to_static on oneDNN
def test_onednn_channel_check_refuses_widths_off_the_block_and_passes_multiples():
    pytest.importorskip("paddle")
    from paddle_impl.archs.onednn_train import check_onednn_train_channels, onednn_channel_block
    from paddle_impl.archs.rrdbnet_arch import RRDBNet
    block = onednn_channel_block()
    check_onednn_train_channels(RRDBNet(nf=2 * block, nb=1, gc=block))
    with pytest.raises(ConfigError) as info:
        check_onednn_train_channels(RRDBNet(nf=2 * block, nb=1, gc=4))
    assert "gc 4" in str(info.value) and "model.to_static=false" in str(info.value)


@pytest.mark.slow
def test_to_static_with_a_tiny_gc_is_one_error_line(tmp_path):
    """Without the check this run ends in oneDNN's 'RuntimeError: std::exception' (concat_grad)."""
    pytest.importorskip("paddle")
    from common_data.data.demo_data import make_demo_data
    make_demo_data(tmp_path / "d", num_train=2, num_test=1, size=32)
    cfg = base()
    cfg["model"] = {"name": "BaseSRModel", "generator": {"name": "RRDBNet", "nf": 8, "nb": 1, "gc": 4},
                    "pixel_criterion": {"name": "L1Loss"}, "to_static": True}
    cfg["lr_scheduler"] = {"name": "MultiStepDecay", "learning_rate": 1e-3, "milestones": [100], "gamma": 0.5}
    cfg["optimizer"] = {"name": "Adam", "net_names": ["generator"]}
    cfg["output_dir"] = str(tmp_path / "out")
    for phase in ("train", "test"):
        data = str(tmp_path / "d" / phase)
        cfg["dataset"][phase].update(gt_folder=data, lq_folder=f"{data}_X4")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, MAIN, "-c", str(write(tmp_path, cfg))], capture_output=True, text=True,
                          env=env, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert len(lines) == 1 and "gc 4" in lines[0] and "model.to_static=false" in lines[0]
