"""common_data.training.run_plan: when a run logs, validates and saves, decided once for both backends."""
import glob
import os
import re
import subprocess
import sys

import pytest
import yaml

from common_data.config.loading import to_attrdict
from common_data.errors import ConfigError
from common_data.training.run_plan import DEFAULT_SNAPSHOT_INTERVAL, RunPlan
from test_bad_input import base_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def plan_of(cfg, debug=False):
    return RunPlan.from_config(to_attrdict(cfg), debug)


def run_on(backend, cfg, folder, *extra):
    """tools/main.py on ``cfg`` written into ``folder/backend``; the finished process (exit 0 asserted)."""
    (folder / backend).mkdir()
    path = folder / backend / "plan.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "main.py"), "-c", str(path), "--backend",
                           backend, *extra], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_defaults_validate_and_save_at_their_intervals_and_at_the_last_iteration(tmp_path):
    cfg = base_config(str(tmp_path), str(tmp_path))
    cfg.update(total_iters=10, snapshot_config={"interval": 4}, validate=dict(cfg["validate"], interval=3))
    plan = plan_of(cfg)
    assert [it for it in range(1, 11) if plan.snapshot_due(it)] == [4, 8, 10]
    assert [it for it in range(1, 11) if plan.validate_due(it)] == [3, 6, 9, 10]
    cfg.pop("snapshot_config")
    cfg["validate"].pop("interval")
    plan = plan_of(cfg)
    assert plan.snapshot_interval == DEFAULT_SNAPSHOT_INTERVAL
    assert [it for it in range(1, 11) if plan.validate_due(it)] == [10]


def test_debug_runs_8_iterations_logging_each_saving_and_validating_every_4(tmp_path):
    cfg = base_config(str(tmp_path), str(tmp_path))
    cfg.update(total_iters=400000)
    plan = plan_of(cfg, debug=True)
    assert (plan.total_iters, plan.log_interval) == (8, 1)
    assert [it for it in range(1, 9) if plan.snapshot_due(it)] == [4, 8]
    assert [it for it in range(1, 9) if plan.validate_due(it)] == [4, 8]
    cfg["dataset"].pop("test")
    cfg.pop("validate")
    assert not any(plan_of(cfg, debug=True).validate_due(it) for it in range(1, 9))


def test_epochs_count_optimizer_steps_per_epoch(tmp_path):
    cfg = base_config(str(tmp_path), str(tmp_path))
    cfg.update(epochs=3, accumulate_steps=2)
    plan = plan_of(cfg)
    assert plan.total_iters is None and plan.set_epoch_length(7) == 9  # 7 batches: 3 steps of 2 per epoch


def test_validate_without_a_test_set_is_one_error_naming_both_keys(tmp_path):
    cfg = base_config(str(tmp_path), str(tmp_path))
    cfg["dataset"].pop("test")
    with pytest.raises(ConfigError, match="validate: there is no dataset.test block"):
        plan_of(cfg)


@pytest.mark.slow
def test_debug_saves_and_validates_at_the_same_iterations_on_both_backends(tmp_path):
    from common_data.data.demo_data import make_demo_data
    make_demo_data(str(tmp_path / "demo"), num_train=2, num_test=1, seed=0, size=32)
    done = {}
    for backend in ("paddle", "torch"):
        cfg = base_config(str(tmp_path / backend), str(tmp_path / "demo"))
        cfg["total_iters"] = 1000  # --debug trains 8 of them
        cfg["lr_scheduler"].update(periods=[1000])
        proc = run_on(backend, cfg, tmp_path, "--debug")
        weights = glob.glob(str(tmp_path / backend / "out" / "debug_*" / "iter_*_weight.*"))
        saved = sorted(int(re.search(r"iter_(\d+)_weight", w).group(1)) for w in weights)
        validated = [int(n) for n in re.findall(r"Iter: (\d+) Metric", proc.stdout + proc.stderr)]
        done[backend] = (saved, validated)
    assert done["paddle"] == done["torch"] == ([4, 8], [4, 8])


@pytest.mark.slow
def test_epochs_train_the_same_number_of_iterations_on_both_backends(tmp_path):
    """PaddleGAN's by-epoch mode: 2 epochs of 4 demo images in batches of 2 = 4 iterations on either backend."""
    from common_data.data.demo_data import make_demo_data
    make_demo_data(str(tmp_path / "demo"), num_train=4, num_test=1, seed=0, size=32)
    logged = {}
    for backend in ("paddle", "torch"):
        cfg = base_config(str(tmp_path / backend), str(tmp_path / "demo"))
        del cfg["total_iters"]
        cfg["epochs"] = 2
        cfg["lr_scheduler"] = {"name": "MultiStepDecay", "learning_rate": 1e-3, "milestones": [100], "gamma": 0.5}
        logged[backend] = re.findall(r"Iter: (\d+)/(\d+) lr", run_on(backend, cfg, tmp_path).stdout)
    assert logged["paddle"] == logged["torch"] == [(str(i), "4") for i in range(1, 5)]


def test_debug_caps_the_training_batch_and_says_so_and_a_normal_run_keeps_it():
    from common_data.training.run_plan import DEBUG_MAX_BATCH
    cfg = {"total_iters": 100, "dataset": {"train": {"batch_size": 12}}}
    block = dict(cfg["dataset"]["train"])
    assert plan_of(cfg).debug_train_block(block) == [] and block["batch_size"] == 12
    (note,) = plan_of(cfg, debug=True).debug_train_block(block)
    assert block["batch_size"] == DEBUG_MAX_BATCH == 4 and "batch_size 12 -> 4" in note
    small = {"batch_size": 2}
    assert plan_of(cfg, debug=True).debug_train_block(small) == [] and small["batch_size"] == 2
