"""Config: PaddleGAN's schema, ``-o`` overrides and validation before any training, one line per mistake."""
import hashlib
import pathlib

import pytest
import yaml

from common_data.config.loading import apply_override, load_config, parse_min_max, validate
from common_data.errors import ConfigError
from common_data.registry import Registry

ROOT = pathlib.Path(__file__).resolve().parents[1]
PPGAN_PSNR = ROOT / "configs" / "esrgan_psnr_x4_div2k.yaml"
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))

TINY = {
    "total_iters": 100,
    "output_dir": "output_dir",
    "min_max": "(0., 1.)",
    "model": {"name": "BaseSRModel", "generator": {"name": "RRDBNet", "nf": 8, "nb": 1},
              "pixel_criterion": {"name": "L1Loss"}},
    "dataset": {"train": {"name": "SRDataset", "gt_folder": "GT", "lq_folder": "LQ", "batch_size": 2,
                          "preprocess": [{"name": "LoadImageFromFile", "key": "lq"},
                                         {"name": "LoadImageFromFile", "key": "gt"}]}},
    "lr_scheduler": {"name": "CosineAnnealingRestartLR", "learning_rate": 0.0002, "periods": [50, 50],
                     "restart_weights": [1, 1], "eta_min": 1.0e-7},
    "optimizer": {"name": "Adam", "net_names": ["generator"]},
    "log_config": {"interval": 10},
}


def write(tmp_path, cfg, name="tiny.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def tiny(tmp_path, overrides=(), check_paths=False, **changes):
    return load_config(write(tmp_path, {**TINY, **changes}), overrides, check_paths=check_paths)


def one_line_error(func, *args, **kwargs):
    with pytest.raises(ConfigError) as info:
        func(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# PaddleGAN's own config and ours

def test_paddlegans_psnr_config_is_kept_unchanged_in_content():
    """configs/esrgan_psnr_x4_div2k.yaml is PaddleGAN's file byte for byte, plus one leading comment line.

    The digest is of PaddleGAN's configs/esrgan_psnr_x4_div2k.yaml at commit 20bd1ff1 (PaddlePaddle/PaddleGAN).
    """
    lines = PPGAN_PSNR.read_text().splitlines(True)
    assert lines[0].startswith("# PaddleGAN's own")
    digest = hashlib.sha256("".join(lines[1:]).encode()).hexdigest()
    assert digest == "b61978ce6da43cceafd8f16e221d865a9a230922170ffd6d98d3d2c5a1a4f02d"


def test_paddlegans_psnr_config_loads_as_it_is():
    cfg = load_config(PPGAN_PSNR, check_paths=False)
    assert cfg.total_iters == 1000000
    assert cfg.model.to_static is False
    assert cfg.min_max == "(0., 1.)" and parse_min_max(cfg.min_max) == (0.0, 1.0)
    assert cfg.model.generator == {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 64, "nb": 23}
    assert cfg.lr_scheduler.periods == [250000] * 4 and cfg.lr_scheduler.eta_min == 1e-7
    assert cfg.dataset.train.preprocess[2].pipeline[0].gt_patch_size == 128
    assert cfg.export_model == [{"name": "generator", "inputs_num": 1}]
    assert cfg.validate.metrics.psnr.test_y_channel is True
    assert cfg.config_name == "esrgan_psnr_x4_div2k"


def test_attribute_access_reaches_nested_blocks_and_list_items():
    cfg = load_config(PPGAN_PSNR, check_paths=False)
    assert cfg.dataset.train.preprocess[0].key == "lq"
    with pytest.raises(AttributeError):
        cfg.model.no_such_key


def test_paddlegans_psnr_config_names_its_missing_data_folder():
    msg = one_line_error(load_config, PPGAN_PSNR)
    assert "dataset.train.gt_folder" in msg and "data/DIV2K/DIV2K_train_HR_sub" in msg


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads(path):
    cfg = load_config(path, check_paths=False)
    assert cfg.model.name and cfg.dataset.train.name
    lo, hi = parse_min_max(cfg.get("min_max", (0.0, 1.0)))
    assert lo < hi


@pytest.mark.parametrize("text, want", [("(0., 1.)", (0.0, 1.0)), ("(-1., 1.)", (-1.0, 1.0)),
                                        ("[0, 255]", (0.0, 255.0)), ((0, 1), (0.0, 1.0)), ([-1, 1], (-1.0, 1.0))])
def test_parse_min_max_reads_paddlegans_string_and_sequences(text, want):
    assert parse_min_max(text) == want


@pytest.mark.parametrize("bad", ["(0.)", "(0., 1., 2.)", "(a, b)", 5, "(1., 0.)"])
def test_parse_min_max_rejects_anything_but_two_increasing_numbers(bad):
    assert "min_max" in one_line_error(parse_min_max, bad)


# YAML numbers

def test_exponent_floats_without_a_dot_are_floats_as_in_paddlegan(tmp_path):
    """PyYAML reads 1e-4 as a string; PaddleGAN literal_evals it to a float, and so do we."""
    text = write(tmp_path, TINY).read_text().replace("learning_rate: 0.0002", "learning_rate: 2e-4")
    path = tmp_path / "exp.yaml"
    path.write_text(text.replace("eta_min: 1.0e-07", "eta_min: 1E-7"))
    assert "2e-4" in path.read_text() and "1E-7" in path.read_text()
    cfg = load_config(path, check_paths=False)
    assert cfg.lr_scheduler.learning_rate == 2e-4 and cfg.lr_scheduler.eta_min == 1e-7
    assert cfg.output_dir == "output_dir"


# overrides

def test_overrides_parse_values_as_yaml_scalars(tmp_path):
    cfg = tiny(tmp_path, ["total_iters=60", "lr_scheduler.periods=[60]", "lr_scheduler.restart_weights=[1]",
                          "lr_scheduler.learning_rate=1e-4", "lr_scheduler.eta_min=0.5", "model.generator.nb=2",
                          "log_config.interval=5", "enable_visualdl=false", "output_dir=runs/a b",
                          "model.pretrain_network_g=~"])
    assert cfg.total_iters == 60 and type(cfg.total_iters) is int
    assert cfg.lr_scheduler.periods == [60] and cfg.lr_scheduler.restart_weights == [1]
    assert cfg.lr_scheduler.learning_rate == 1e-4 and type(cfg.lr_scheduler.learning_rate) is float
    assert cfg.lr_scheduler.eta_min == 0.5
    assert cfg.model.generator.nb == 2 and cfg.log_config.interval == 5
    assert cfg.enable_visualdl is False and cfg.output_dir == "runs/a b"
    assert cfg.model.pretrain_network_g is None


def test_override_value_may_contain_an_equals_sign(tmp_path):
    assert tiny(tmp_path, ["output_dir=runs/lr=1"]).output_dir == "runs/lr=1"


def test_override_reaches_list_items_by_index(tmp_path):
    cfg = tiny(tmp_path, ["dataset.train.preprocess.0.key=gt", "dataset.train.preprocess.1={name: Noop}"])
    assert cfg.dataset.train.preprocess[0].key == "gt"
    assert cfg.dataset.train.preprocess[1].name == "Noop"


def test_override_of_a_list_index_out_of_range_says_the_length(tmp_path):
    msg = one_line_error(tiny, tmp_path, ["dataset.train.preprocess.5.key=gt"])
    assert "dataset.train.preprocess" in msg and "below 2" in msg


def test_override_of_a_missing_key_is_refused_with_a_suggestion(tmp_path):
    msg = one_line_error(tiny, tmp_path, ["log_config.intervall=4"])
    assert "'log_config.intervall'" in msg and "Did you mean 'log_config.interval'" in msg
    msg = one_line_error(tiny, tmp_path, ["total_iter=5"])
    assert "Did you mean 'total_iters'" in msg


def test_override_may_add_schema_top_level_keys_and_their_blocks(tmp_path):
    cfg = tiny(tmp_path, ["seed=3", "backend=torch", "validate.interval=7", "snapshot_config.interval=20"])
    assert cfg.seed == 3 and cfg.backend == "torch"
    assert cfg.validate == {"interval": 7} and cfg.snapshot_config.interval == 20


def test_override_may_add_a_leaf_option_to_a_named_block(tmp_path):
    cfg = tiny(tmp_path, ["model.ema_decay=0.999", "model.generator.gc=4"])
    assert cfg.model.ema_decay == 0.999 and cfg.model.generator.gc == 4


def test_override_may_not_add_nested_blocks_under_an_existing_unnamed_block(tmp_path):
    assert "'log_config.new'" in one_line_error(tiny, tmp_path, ["log_config.new.x=1"])


def test_override_without_equals_sign_is_refused(tmp_path):
    assert "key.sub=value" in one_line_error(tiny, tmp_path, ["total_iters"])


def test_override_through_a_scalar_is_refused(tmp_path):
    assert "total_iters is not a mapping" in one_line_error(tiny, tmp_path, ["total_iters.x=1"])


def test_apply_override_edits_in_place():
    cfg = load_config(PPGAN_PSNR, check_paths=False)
    apply_override(cfg, "dataset.train.preprocess.2.pipeline.0.gt_patch_size=64")
    assert cfg.dataset.train.preprocess[2].pipeline[0].gt_patch_size == 64


# validation

def test_restart_periods_must_sum_to_total_iters_and_the_message_names_both(tmp_path):
    msg = one_line_error(tiny, tmp_path, ["total_iters=60"])
    assert "lr_scheduler.periods" in msg and "100" in msg and "60" in msg and "periods=[60]" in msg
    assert tiny(tmp_path, ["total_iters=60", "lr_scheduler.periods=[30, 30]"]).total_iters == 60


def test_restart_weights_must_match_the_periods(tmp_path):
    msg = one_line_error(tiny, tmp_path, ["lr_scheduler.restart_weights=[1, 1, 1]"])
    assert "restart_weights has 3" in msg and "periods has 2" in msg
    assert "restart_weights" in one_line_error(tiny, tmp_path, ["lr_scheduler.restart_weights=1"])


def test_periods_must_be_integers(tmp_path):
    assert "periods must be a list of integers" in one_line_error(tiny, tmp_path, ["lr_scheduler.periods=[50.0, 50]"])


def test_milestones_must_be_increasing_integers(tmp_path):
    sched = {"name": "MultiStepLR", "learning_rate": 1.0e-4, "milestones": [60, 20], "gamma": 0.5}
    assert "increasing" in one_line_error(tiny, tmp_path, lr_scheduler=sched)
    assert "integers" in one_line_error(tiny, tmp_path, lr_scheduler={**sched, "milestones": "60"})


def test_wrong_value_type_names_the_key_and_the_value(tmp_path):
    msg = one_line_error(tiny, tmp_path, total_iters="abc")
    assert "'total_iters'" in msg and "int" in msg and "'abc'" in msg
    assert "'total_iters'" in one_line_error(tiny, tmp_path, total_iters=True)
    assert "'total_iters'" in one_line_error(tiny, tmp_path, ["total_iters=abc"])
    assert "log_config.interval" in one_line_error(tiny, tmp_path, ["log_config.interval=often"])
    assert "'model' must be a mapping" in one_line_error(tiny, tmp_path, model=None)


def test_total_iters_must_be_positive(tmp_path):
    assert "total_iters must be positive" in one_line_error(tiny, tmp_path, ["total_iters=0", "lr_scheduler=~"])


def test_unknown_top_level_key_gets_a_close_match(tmp_path):
    msg = one_line_error(tiny, tmp_path, snapshot_confg={"interval": 5})
    assert "'snapshot_confg'" in msg and "Did you mean 'snapshot_config'" in msg
    assert "Did you mean" not in one_line_error(tiny, tmp_path, zzz=1)


def test_missing_model_name_and_unknown_backend_are_named(tmp_path):
    assert "model.name" in one_line_error(tiny, tmp_path, model={"generator": {"name": "RRDBNet"}})
    assert "backend" in one_line_error(tiny, tmp_path, backend="jax")


def test_bad_yaml_and_missing_file_are_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n  name: x\n")
    assert "bad.yaml" in one_line_error(load_config, bad)
    assert "nope.yaml" in one_line_error(load_config, tmp_path / "nope.yaml")


def test_missing_data_folder_names_key_folder_and_the_demo_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "GT").mkdir()
    msg = one_line_error(tiny, tmp_path, check_paths=True)
    assert "dataset.train.lq_folder" in msg and "LQ" in msg and "python tools/make_demo_data.py" in msg
    (tmp_path / "LQ").mkdir()
    assert tiny(tmp_path, check_paths=True).dataset.train.lq_folder == "LQ"


def test_validation_runs_before_any_training_on_the_config_object(tmp_path):
    cfg = tiny(tmp_path)
    cfg.lr_scheduler.periods = [10]
    assert "sum to 10" in one_line_error(validate, cfg, source="x.yaml", check_paths=False)


# names resolved through a Registry

class RRDBNet:
    def __init__(self, nf=64, nb=23):
        self.nf, self.nb = nf, nb


def test_unknown_name_lists_known_names_and_suggests_a_close_match():
    archs = Registry("arch")
    archs.register(RRDBNet)
    archs.register(RRDBNet, name="VGGDiscriminator128")
    msg = one_line_error(archs.build, {"name": "RRDBnet", "nf": 8}, where="model.generator")
    assert "'RRDBnet'" in msg and "model.generator" in msg and "Did you mean 'RRDBNet'" in msg
    assert "Known: RRDBNet, VGGDiscriminator128" in msg
    assert "Did you mean" not in one_line_error(archs.get, "Transformer")


def test_registry_builds_with_options_and_names_an_unknown_option():
    archs = Registry("arch")
    archs.register(RRDBNet)
    net = archs.build({"name": "RRDBNet", "nf": 8}, nb=2)
    assert (net.nf, net.nb) == (8, 2)
    msg = one_line_error(archs.build, {"name": "RRDBNet", "nbb": 2}, where="model.generator")
    assert "model.generator (RRDBNet)" in msg and "'nbb'" in msg and "Did you mean 'nb'" in msg
    assert "'name:'" in one_line_error(archs.build, {"nf": 8}, where="model.generator")


def test_registry_refuses_two_objects_under_one_name():
    archs = Registry("arch")
    archs.register(RRDBNet)
    archs.register(RRDBNet)  # the same object again is fine (re-import)
    with pytest.raises(KeyError):
        archs.register(dict, name="RRDBNet")
