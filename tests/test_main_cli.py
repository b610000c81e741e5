"""tools/main.py as people run it: one `error:` line for bad input, evaluate-only round trip, backend dispatch."""
import importlib.util
import os
import re
import subprocess
import sys
import types

import pytest
import yaml

from common_data.data.demo_data import make_demo_data
from helpers import paired_preprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, "tools", "main.py")
TINY_G = {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4}


def cli(*args, cwd=None):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, MAIN, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def error_lines(proc):
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def assert_one_error(proc, *patterns):
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for pattern in patterns:
        assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_demo_data(str(root), num_train=2, num_test=2, seed=0, size=32)
    return str(root)


def config(tmp_path, demo, **changes):
    pre = paired_preprocess()
    cfg = {
        "total_iters": 3, "output_dir": str(tmp_path / "out"), "min_max": "(0., 1.)", "seed": 1,
        "model": {"name": "BaseSRModel", "generator": TINY_G, "pixel_criterion": {"name": "L1Loss"}},
        "dataset": {
            "train": {"name": "SRDataset", "gt_folder": f"{demo}/train", "lq_folder": f"{demo}/train_X4",
                      "scale": 4, "batch_size": 2, "num_workers": 0, "preprocess": pre},
            "test": {"name": "SRDataset", "gt_folder": f"{demo}/test", "lq_folder": f"{demo}/test_X4", "scale": 4,
                     "preprocess": pre}},
        "lr_scheduler": {"name": "CosineAnnealingRestartLR", "learning_rate": 1e-3, "periods": [3],
                         "restart_weights": [1], "eta_min": 1e-7},
        "optimizer": {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
        "validate": {"interval": 100, "metrics": {"psnr": {"name": "PSNR", "crop_border": 4},
                                                  "ssim": {"name": "SSIM", "crop_border": 4}}},
        "log_config": {"interval": 1, "visiual_interval": 100},
        "snapshot_config": {"interval": 100},
    }
    cfg.update(changes)
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def metric_values(text):
    lines = [line for line in text.splitlines() if "Metric psnr:" in line]
    assert lines, text
    return re.findall(r"Metric (\w+): ([-\d.]+)", lines[-1])


def test_unknown_config_key_is_one_line(tmp_path, demo):
    path = config(tmp_path, demo, totl_iters=5)
    assert_one_error(cli("-c", path), r"unknown config key 'totl_iters'", "total_iters")


def test_missing_data_folder_names_it_and_the_demo_tool(tmp_path, demo):
    path = config(tmp_path, demo)
    missing = str(tmp_path / "nowhere")
    assert_one_error(cli("-c", path, "-o", f"dataset.train.gt_folder={missing}"),
                     re.escape(missing), r"tools/make_demo_data\.py")


def test_periods_not_summing_to_total_iters(tmp_path, demo):
    assert_one_error(cli("-c", config(tmp_path, demo), "-o", "total_iters=5"), r"periods sum to 3.*total_iters is 5")


def test_unknown_override_key(tmp_path, demo):
    assert_one_error(cli("-c", config(tmp_path, demo), "-o", "modle.ema_decay=0.9"), r"modle")


def test_missing_config_file(tmp_path):
    assert_one_error(cli("-c", str(tmp_path / "none.yaml")), r"config file not found: .*none\.yaml")


def test_evaluate_only_needs_load(tmp_path, demo):
    assert_one_error(cli("-c", config(tmp_path, demo), "--evaluate-only"), r"--evaluate-only needs .*--load")


def test_load_of_a_missing_file(tmp_path, demo):
    assert_one_error(cli("-c", config(tmp_path, demo), "--load", str(tmp_path / "w.pdparams")),
                     r"--load: file not found: .*w\.pdparams")


def test_unknown_model_name(tmp_path, demo):
    path = config(tmp_path, demo, model={"name": "ESRGANN", "generator": TINY_G})
    assert_one_error(cli("-c", path), r"unknown model name 'ESRGANN'.*Did you mean 'ESRGAN'")


def test_evaluate_only_reproduces_the_metrics_of_training_and_resume_refuses_weights(tmp_path, demo):
    path = config(tmp_path, demo)
    trained = cli("-c", path)
    assert trained.returncode == 0, trained.stderr
    expected = metric_values(trained.stdout)
    (run_dir,) = os.listdir(tmp_path / "out")
    weights = str(tmp_path / "out" / run_dir / "iter_3_weight.pdparams")
    evaluated = cli("-c", path, "--evaluate-only", "--load", weights)
    assert evaluated.returncode == 0, evaluated.stderr
    assert metric_values(evaluated.stdout) == expected
    assert "Iter: 3 Metric" in evaluated.stdout
    assert_one_error(cli("-c", path, "--resume", weights), r"not a training checkpoint.*--load")


def load_main():
    return importlib.import_module("esrgan_twin.commands.train")


def test_backend_flag_and_config_key_choose_the_runner(tmp_path, demo, monkeypatch):
    main = load_main()
    calls = []
    for backend in ("paddle", "torch"):
        stub = types.ModuleType(f"{backend}_impl.engine.run")
        stub.run = lambda cfg, args, backend=backend: calls.append((backend, cfg.total_iters)) or 0
        monkeypatch.setitem(sys.modules, f"{backend}_impl.engine.run", stub)
    monkeypatch.setattr(main, "load_runner", lambda backend: sys.modules[main.RUNNERS[backend]].run)
    path = config(tmp_path, demo)
    assert main.main(["-c", path, "--backend", "torch"]) == 0
    assert main.main(["-c", path]) == 0
    assert main.main(["-c", config(tmp_path, demo, backend="torch")]) == 0
    assert main.main(["-c", config(tmp_path, demo, backend="torch"), "--backend", "paddle"]) == 0
    assert calls == [("torch", 3), ("paddle", 3), ("torch", 3), ("paddle", 3)]


def test_backend_torch_really_runs_the_torch_engine(tmp_path, demo):
    if importlib.util.find_spec("torch") is None or not os.path.exists(
            os.path.join(ROOT, "torch_impl", "engine", "run.py")):
        pytest.skip("torch backend not available")
    weights = tmp_path / "iter_1_weight.pdparams"
    weights.write_bytes(b"not used")
    # the torch side refuses a paddle file by name: proof that --backend torch reached it
    assert_one_error(cli("-c", config(tmp_path, demo), "--backend", "torch", "--evaluate-only", "--load",
                         str(weights)), r"iter_1_weight\.pdparams is a Paddle file")


def logged_losses(text):
    return {int(it): float(v) for it, v in re.findall(r"Iter: (\d+)/\d+ lr: \S+ l_pix: ([-\d.]+)", text)}


def test_to_static_trains_like_eager_and_resumes_from_its_checkpoint(tmp_path, demo):
    """model.to_static (static graph + oneDNN, set up by tools/main.py) logs the eager losses; resume continues them."""
    gen = dict(TINY_G, nf=16, gc=16)  # oneDNN's concat_grad rejects the tiniest channel counts
    common = dict(total_iters=4, snapshot_config={"interval": 2}, precision="fp32",  # auto: bf16 on some CPUs
                  lr_scheduler={"name": "CosineAnnealingRestartLR", "learning_rate": 1e-3, "periods": [4],
                                "restart_weights": [1], "eta_min": 1e-7})
    model = {"name": "BaseSRModel", "generator": gen, "pixel_criterion": {"name": "L1Loss"}}
    (tmp_path / "e").mkdir()
    (tmp_path / "s").mkdir()
    eager = cli("-c", config(tmp_path / "e", demo, model=model, output_dir=str(tmp_path / "e" / "out"), **common))
    static = cli("-c", config(tmp_path / "s", demo, model=dict(model, to_static=True),
                              output_dir=str(tmp_path / "s" / "out"), **common))
    assert eager.returncode == 0 and static.returncode == 0, eager.stderr[-2000:] + static.stderr[-2000:]
    e, s = logged_losses(eager.stdout), logged_losses(static.stdout)
    assert sorted(e) == sorted(s) == [1, 2, 3, 4]
    for it in e:
        assert abs(e[it] - s[it]) <= 2e-5 + 1e-4 * abs(e[it]), (it, e[it], s[it])
    ckpt = next((tmp_path / "s" / "out").glob("*/iter_2_checkpoint.pdparams"))
    resumed = cli("-c", config(tmp_path / "s", demo, model=dict(model, to_static=True),
                               output_dir=str(tmp_path / "s" / "out"), **common), "--resume", str(ckpt))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    r = logged_losses(resumed.stdout)
    assert sorted(r) == [3, 4]
    for it in r:
        assert abs(r[it] - s[it]) <= 2e-5 + 1e-4 * abs(s[it]), (it, r[it], s[it])


@pytest.mark.skipif(not __import__("common_data.config.precision", fromlist=["x"]).onednn_bf16_capable(),
                    reason="oneDNN's bf16 kernels need AVX-512 (this CPU has none)")
def test_to_static_bf16_trains_close_to_fp32_and_resumes_across_precisions(tmp_path, demo):
    """precision bf16 in the static step (bf16 convs, fp32 weights, Adam state and checkpoints): losses within bf16's
    reach of fp32's, and a checkpoint of either precision resumes in the other."""
    gen = dict(TINY_G, nf=16, gc=16)
    model = {"name": "BaseSRModel", "generator": gen, "pixel_criterion": {"name": "L1Loss"}, "to_static": True}
    common = dict(total_iters=4, snapshot_config={"interval": 2}, model=model,
                  lr_scheduler={"name": "CosineAnnealingRestartLR", "learning_rate": 1e-3, "periods": [4],
                                "restart_weights": [1], "eta_min": 1e-7})
    runs, logs = {}, {}
    for precision in ("fp32", "bf16"):
        (tmp_path / precision).mkdir()
        cfg = config(tmp_path / precision, demo, precision=precision, output_dir=str(tmp_path / precision / "out"),
                     **common)
        proc = cli("-c", cfg)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[precision], logs[precision] = logged_losses(proc.stdout), proc.stdout
    assert "precision bf16 (as configured" in logs["bf16"] and "precision fp32 (as configured" in logs["fp32"]
    assert sorted(runs["bf16"]) == [1, 2, 3, 4] and runs["bf16"] != runs["fp32"]  # bf16 did run
    for it, loss in runs["fp32"].items():
        assert abs(runs["bf16"][it] - loss) <= 2e-2 * loss, (it, runs["bf16"][it], loss)
    for first, then in (("bf16", "fp32"), ("fp32", "bf16")):
        ckpt = next((tmp_path / first / "out").glob("*/iter_2_checkpoint.pdparams"))
        cfg = config(tmp_path / first, demo, precision=then, output_dir=str(tmp_path / f"{first}-{then}"), **common)
        resumed = cli("-c", cfg, "--resume", str(ckpt))
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert f"precision {then}" in resumed.stdout
        r = logged_losses(resumed.stdout)
        assert sorted(r) == [3, 4]
        for it, loss in r.items():  # the continuation of the first run, at the other precision
            assert abs(loss - runs[first][it]) <= 2e-2 * runs[first][it], (first, then, it, loss)
