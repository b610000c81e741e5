"""The newcomer's path: ``--demo`` makes its data and trains, every run ends with a summary next to bicubic, the
first iterations are logged at once, a small run's weights with the full config name the run's config, Paddle's
import banners stay out of the output."""
import glob
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from common_data.config.loading import to_attrdict
from common_data.metrics.quality import calculate_psnr, calculate_ssim
from common_data.training.run_plan import EARLY_LOG_ITERS, RunPlan
from test_main_cli import TINY_G, assert_one_error, cli, config, demo  # noqa: F401 (demo is a fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, "tools", "main.py")
SUMMARY = re.compile(r"training finished at iteration (\d+) \((\d+) iterations in [\d:]+\); validation psnr ([\d.]+), "
                     r"ssim ([\d.]+); bicubic psnr ([\d.]+), ssim ([\d.]+); weights in (\S+); strips in (\S+)$")


def test_the_first_iterations_are_logged_whatever_the_interval():
    plan = RunPlan.from_config(to_attrdict({"total_iters": 100, "log_config": {"interval": 50}}))
    assert [it for it in range(1, 101) if plan.log_due(it)] == list(range(1, EARLY_LOG_ITERS + 1)) + [50, 100]


def bicubic_by_hand(data, crop_border=4):
    """Mean PSNR / SSIM (RGB, as the config asks) of OpenCV's bicubic x4 of each test LQ against its GT."""
    psnr, ssim = [], []
    for gt_path in sorted(glob.glob(os.path.join(data, "test", "*.png"))):
        gt = cv2.cvtColor(cv2.imread(gt_path), cv2.COLOR_BGR2RGB)
        lq = cv2.cvtColor(cv2.imread(os.path.join(data, "test_X4", os.path.basename(gt_path))), cv2.COLOR_BGR2RGB)
        up = cv2.resize(lq, (gt.shape[1], gt.shape[0]), interpolation=cv2.INTER_CUBIC)
        psnr.append(calculate_psnr(up, gt, crop_border))
        ssim.append(calculate_ssim(up, gt, crop_border))
    return float(np.mean(psnr)), float(np.mean(ssim))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_a_run_ends_with_its_metrics_next_to_bicubic_s_and_where_its_files_are(backend, tmp_path, demo):
    path = config(tmp_path, demo, validate={"interval": 100, "save_img": True, "metrics": {
        "psnr": {"name": "PSNR", "crop_border": 4}, "ssim": {"name": "SSIM", "crop_border": 4}}})
    proc = cli("-c", path, "--backend", backend)
    assert proc.returncode == 0, proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    m = SUMMARY.search(last)
    assert m, last
    iters, trained, psnr, ssim, b_psnr, b_ssim, run_dir, strips = m.groups()
    assert (iters, trained) == ("3", "3")
    assert re.search(rf"Iter: 3 Metric psnr: {psnr} Metric ssim: {ssim}", proc.stdout)
    assert (float(b_psnr), float(b_ssim)) == pytest.approx(bicubic_by_hand(demo), abs=1e-4)
    assert glob.glob(os.path.join(run_dir, "iter_3_weight.*")) and os.listdir(strips)


@pytest.mark.slow
def test_weights_of_another_net_name_the_run_s_config_yaml_as_the_fix(tmp_path, demo):
    path = config(tmp_path, demo)
    assert cli("-c", path, "--backend", "torch").returncode == 0
    (weights,) = glob.glob(str(tmp_path / "out" / "*" / "iter_3_weight.pth"))
    run_config = os.path.join(os.path.dirname(weights), "config.yaml")
    line = assert_one_error(cli("-c", path, "--backend", "torch", "--evaluate-only", "--load", weights,
                                "-o", "model.generator.nf=16"), "config builds|do not fit")
    assert line.endswith(f"use -c {run_config}")
    evaluated = cli("-c", run_config, "--backend", "torch", "--evaluate-only", "--load", weights)
    assert evaluated.returncode == 0 and "Metric psnr" in evaluated.stdout, evaluated.stderr[-2000:]


@pytest.mark.slow
def test_demo_writes_the_demo_set_when_missing_then_trains_the_demo_config(tmp_path):
    short = ["-o", "total_iters=4", "lr_scheduler.periods=[4]", "validate.interval=4", "snapshot_config.interval=4",
             "log_config.visiual_interval=4"]
    proc = cli("--demo", "--backend", "torch", *short, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "demo data: data/demo was missing; wrote 40 synthetic images" in proc.stdout  # 16 + 4 pairs
    assert [len(os.listdir(tmp_path / "data" / "demo" / sub)) for sub in ("train_X4", "test_X4")] == [16, 4]
    assert SUMMARY.search(proc.stdout.strip().splitlines()[-1])
    assert glob.glob(str(tmp_path / "output_dir" / "esrgan_psnr_x4_demo-*"))
    again = cli("--demo", "--backend", "torch", *short, cwd=tmp_path)
    assert again.returncode == 0 and "demo data:" not in again.stdout


def test_without_a_config_or_demo_the_command_says_what_to_give():
    assert_one_error(cli(), r"give a config: -c FILE .*--demo")


def test_importing_the_paddle_backend_prints_no_thread_banner_or_glog_lines():
    code = "import paddle_impl.archs, paddle\nprint('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, OMP_NUM_THREADS="2"))
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
    assert "OMP_NUM_THREADS" not in out.stderr and "No ccache found" not in out.stderr, out.stderr


# ---- to_static: auto ---------------------------------------------------------------------------------------------
def test_static_step_fits_exactly_the_pixel_loss_rrdbnet_configs():
    from common_data.training.steps import static_step_fits, to_static_choice
    base = {"model": {"name": "BaseSRModel", "generator": {"name": "RRDBNet"}, "pixel_criterion": {"name": "L1Loss"}}}
    assert static_step_fits(base) == (True, None)
    assert static_step_fits({"model": dict(base["model"], name="RealESRNet")})[0]
    for change, why in [({"name": "ESRGAN"}, "more than a pixel loss"),
                        ({"generator": {"name": "SRVGGNetCompact"}}, "built for RRDBNet"),
                        ({"edge_criterion": {"name": "EdgeLoss"}}, "pixel_criterion alone"),
                        ({"loss_stages": [{"from": 1, "terms": ["l_pix"]}]}, "pixel_criterion alone")]:
        fits, reason = static_step_fits({"model": dict(base["model"], **change)})
        assert not fits and why in reason
    assert static_step_fits(dict(base, accumulate_steps=2)) == (False, "it does not combine with accumulate_steps > 1")
    assert [to_static_choice(m) for m in ({}, {"to_static": "Auto"}, {"to_static": 1}, None)] == [False, "auto", True,
                                                                                               False]


@pytest.mark.slow
def test_to_static_auto_takes_the_static_step_where_it_fits_and_says_why_not_elsewhere(tmp_path, demo):
    from test_main_cli import logged_losses
    common = dict(total_iters=3, lr_scheduler={"name": "CosineAnnealingRestartLR", "learning_rate": 1e-3,
                                               "periods": [3], "restart_weights": [1], "eta_min": 1e-7})
    model = {"name": "BaseSRModel", "generator": dict(TINY_G, nf=16, gc=16), "pixel_criterion": {"name": "L1Loss"}}
    runs = {}
    for name, to_static in (("auto", "auto"), ("static", True)):
        (tmp_path / name).mkdir()
        runs[name] = cli("-c", config(tmp_path / name, demo, model=dict(model, to_static=to_static),
                                      output_dir=str(tmp_path / name / "out"), **common))
        assert runs[name].returncode == 0, runs[name].stderr[-2000:]
    assert "training step: static (to_static auto" in runs["auto"].stdout
    assert logged_losses(runs["auto"].stdout) == logged_losses(runs["static"].stdout)
    (tmp_path / "edge").mkdir()
    edge = cli("-c", config(tmp_path / "edge", demo, model=dict(model, to_static="auto", edge_criterion={
        "name": "EdgeLoss", "loss_weight": 0.1}), output_dir=str(tmp_path / "edge" / "out"), **common))
    assert edge.returncode == 0, edge.stderr[-2000:]
    assert "training step: eager (to_static auto: eager, since it trains a pixel_criterion alone" in edge.stdout
    torch_run = cli("-c", config(tmp_path / "edge", demo, model=dict(model, to_static="auto"),
                                 output_dir=str(tmp_path / "edge" / "torch")), "--backend", "torch")
    assert torch_run.returncode == 0 and "training step" not in torch_run.stdout, torch_run.stderr[-2000:]


def run_in_terminal(cmd, cwd=None, cols=120):
    """``cmd`` with a 120-column pseudo-terminal as stdin / stdout / stderr -> (exit code, all it wrote)."""
    import fcntl
    import struct
    import termios
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, close_fds=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    os.close(slave)
    out = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not data:
            break
        out.append(data)
    proc.wait(timeout=300)
    os.close(master)
    return proc.returncode, b"".join(out).decode(errors="replace")


@pytest.mark.slow
def test_on_a_terminal_an_iteration_bar_runs_between_the_log_lines_and_leaves_them_whole(tmp_path, demo):
    path = config(tmp_path, demo, total_iters=30, log_config={"interval": 15, "visiual_interval": 100},
                  lr_scheduler={"name": "CosineAnnealingRestartLR", "learning_rate": 1e-3, "periods": [30],
                                "restart_weights": [1], "eta_min": 1e-7})
    code, text = run_in_terminal([sys.executable, MAIN, "-c", path, "--backend", "torch"])
    assert code == 0, text[-2000:]
    assert re.search(r"\| +\d+/30 \[", text), text[-2000:]  # the bar: "| 7/30 [00:01<00:03, ...]"
    lines = [line.split("\r")[-1] for line in text.split("\r\n")]
    assert [int(m.group(1)) for m in map(re.compile(r"^\[[^]]+\] Iter: (\d+)/30 ").match, lines) if m] == \
        [1, 2, 3, 15, 30]
    plain = cli("-c", path, "--backend", "torch")  # not a terminal: no bar at all
    assert "it/s" not in plain.stdout + plain.stderr and "s/it" not in plain.stdout + plain.stderr
