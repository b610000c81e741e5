"""``enable_visualdl: true``: what a person sees in the real VisualDL server equals what the run's log says.

A short training per backend writes VisualDL records into its run folder; the test starts ``visualdl`` on
127.0.0.1 (a free port, ``--language en``: without it or an Accept-Language header its page answers 500), polls
``/alive``, then reads the run's scalars through the HTTP API of visualdl 2.5.3 (``visualdl/server/app.py``,
``api.py``: ``/app/api/runs``, ``/app/api/scalar/tags``, ``/app/api/scalar/list?run=&tag=`` answering
``{"status": 0, "data": [[time_ms, step, value], ...]}``) and compares the loss and PSNR series with the
``Iter: N/T lr: ... l_pix: ...`` and ``Iter: N Metric psnr: ...`` lines of the run's log.txt.
"""
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from common_data.data.demo_data import make_demo_data
from helpers import paired_preprocess

pytest.importorskip("visualdl")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, "tools", "main.py")
HOST = "127.0.0.1"
TOTAL_ITERS, VALIDATE_EVERY = 4, 2
TRAIN_LINE = re.compile(r"Iter: (\d+)/\d+ lr: \S+ (.*?) batch_cost")
METRIC_LINE = re.compile(r"Iter: (\d+) Metric psnr: ([-\d.]+)")


def torch_engine_ready():
    return importlib.util.find_spec("torch") is not None and os.path.exists(
        os.path.join(ROOT, "torch_impl", "engine", "run.py"))


def config(tmp_path, data, backend):
    pre = paired_preprocess()
    cfg = {
        "backend": backend, "total_iters": TOTAL_ITERS, "output_dir": str(tmp_path / "out"), "min_max": "(0., 1.)",
        "seed": 3, "enable_visualdl": True,
        "model": {"name": "BaseSRModel", "generator": {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1,
                                                       "gc": 4}, "pixel_criterion": {"name": "L1Loss"}},
        "dataset": {
            "train": {"name": "SRDataset", "gt_folder": f"{data}/train", "lq_folder": f"{data}/train_X4", "scale": 4,
                      "batch_size": 2, "num_workers": 0, "preprocess": pre},
            "test": {"name": "SRDataset", "gt_folder": f"{data}/test", "lq_folder": f"{data}/test_X4", "scale": 4,
                     "preprocess": pre}},
        "lr_scheduler": {"name": "CosineAnnealingRestartLR", "learning_rate": 1e-3, "periods": [TOTAL_ITERS],
                         "restart_weights": [1], "eta_min": 1e-7},
        "optimizer": {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
        "validate": {"interval": VALIDATE_EVERY, "metrics": {"psnr": {"name": "PSNR", "crop_border": 4}}},
        "log_config": {"interval": 1, "visiual_interval": 100},
        "snapshot_config": {"interval": 100},
    }
    path = tmp_path / "vdl.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def train(tmp_path, backend):
    """A 4-iteration run with VisualDL on -> (its run folder, log.txt text)."""
    data = str(tmp_path / "data")
    make_demo_data(data, num_train=2, num_test=1, seed=0, size=32)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, MAIN, "-c", config(tmp_path, data, backend)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (run,) = os.listdir(tmp_path / "out")
    run_dir = str(tmp_path / "out" / run)
    assert any(name.startswith("vdlrecords") for name in os.listdir(run_dir)), os.listdir(run_dir)
    with open(os.path.join(run_dir, "log.txt"), encoding="utf-8") as f:
        return run_dir, f.read()


def logged_series(log):
    """{'l_pix': {1: v, 2: v, ...}, ..., 'psnr': {2: v, 4: v}} from the log's training and metric lines."""
    series = {}
    for match in TRAIN_LINE.finditer(log):
        step = int(match.group(1))
        for name, value in re.findall(r"(\w+): ([-\d.e+]+)", match.group(2)):
            series.setdefault(name, {})[step] = float(value)
    for match in METRIC_LINE.finditer(log):
        series.setdefault("psnr", {})[int(match.group(1))] = float(match.group(2))
    return series


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def visualdl_command(logdir, port):
    exe = os.path.join(os.path.dirname(sys.executable), "visualdl")
    if not os.path.exists(exe):
        pytest.skip("the visualdl command is not installed next to this python")
    return [exe, "--logdir", logdir, "--host", HOST, "--port", str(port), "--language", "en"]


def get(port, path, **query):
    url = f"http://{HOST}:{port}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def api(port, route, **query):
    status, body = get(port, f"/app/api/{route}", **query)
    answer = json.loads(body)
    assert status == 200 and answer["status"] == 0, answer
    return answer["data"]


def wait_until_alive(port, server, log_path, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                raise AssertionError(f"visualdl exited with {server.returncode}: {f.read()[-2000:]}")
        try:
            if get(port, "/alive")[0] == 204:
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise AssertionError(f"visualdl did not answer on {HOST}:{port} within {seconds} s")


def served_series(port, want_tags):
    """{tag: {step: value}} of the one run the server lists, for ``want_tags`` (polled: the reader loads lazily)."""
    runs = api(port, "runs")
    assert len(runs) == 1, runs
    deadline = time.monotonic() + 30
    while True:
        tags = api(port, "scalar/tags")
        found = {tag for run_tags in tags["tags"] for tag in run_tags}
        if want_tags <= found or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert want_tags <= found, (want_tags, tags)
    run = tags["runs"][0]
    return {tag: {step: value for _, step, value in api(port, "scalar/list", run=run, tag=tag)} for tag in want_tags}


@pytest.mark.parametrize("backend", ["paddle", pytest.param("torch", marks=pytest.mark.skipif(
    not torch_engine_ready(), reason="torch engine not available"))])
def test_visualdl_server_shows_the_logged_losses_and_psnr(tmp_path, backend):
    run_dir, log = train(tmp_path, backend)
    logged = logged_series(log)
    losses = [name for name in logged if name != "psnr"]
    assert losses and all(sorted(logged[n]) == list(range(1, TOTAL_ITERS + 1)) for n in losses), logged
    assert sorted(logged["psnr"]) == list(range(VALIDATE_EVERY, TOTAL_ITERS + 1, VALIDATE_EVERY)), logged

    port, log_path = free_port(), str(tmp_path / "visualdl.log")
    with open(log_path, "wb") as server_log:
        server = subprocess.Popen(visualdl_command(os.path.dirname(run_dir), port), stdout=server_log,
                                  stderr=subprocess.STDOUT)
    try:
        wait_until_alive(port, server, log_path)
        assert get(port, "/app/index")[0] == 200  # the page itself, in English
        psnr_tag = "metric/psnr"
        served = served_series(port, set(losses) | {psnr_tag})
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)

    for name in losses:  # the log prints 5 decimals; VisualDL keeps float32
        assert sorted(served[name]) == sorted(logged[name]), (name, served[name], logged[name])
        for step, value in logged[name].items():
            assert served[name][step] == pytest.approx(value, abs=6e-6), (name, step)
    assert sorted(served[psnr_tag]) == sorted(logged["psnr"])
    for step, value in logged["psnr"].items():  # the metric line prints 4 decimals
        assert served[psnr_tag][step] == pytest.approx(value, abs=6e-5), step
