"""Faults during training, on both backends: SIGKILL mid-run, a full disk or no permission while saving, a NaN loss.

SIGKILL: a real ``python tools/main.py`` run (RRDBNet nb 1, nf 8, gc 4; demo data; seed fixed; a snapshot every
2 of 12 iterations; a log line every iteration) is killed at an iteration drawn from a seeded RNG (``FAULTS_SEED``
changes the draw), 0-20 ms after that iteration's log line, i.e. sometimes inside the save that follows it.
The truths: every ``iter_N_*`` file left behind loads and says iteration N; the newest complete checkpoint is the
last snapshot the run reached; the restart (``--resume`` it, or ``--auto_resume``) logs iteration N + 1 first
and prints the same lr and losses as an uninterrupted run from there on. Signalled runs go through tests/paced_main.py,
which delays each batch, so that a tiny net with bf16 cannot finish before the signal lands.

Save failures (in-process ``main()``): a real full disk (training into a 512 KB tmpfs, where torch.save raises
RuntimeError and paddle.save OSError); and the framework's ``save`` monkeypatched to write a few bytes and raise
``OSError`` EACCES when an auto-resumed run rewrites a file that is already there (atomicity matters most then). NaN / Inf: ``L1Loss.elementwise`` is monkeypatched to multiply by
NaN or Inf at one iteration (not a huge learning rate: the iteration at which that diverges is not known in advance).
"""
import errno
import glob
import importlib.util
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import yaml

from common_data.weights.checkpoints import EXTENSIONS, newest_checkpoint, parse_checkpoint_name
from common_data.data.demo_data import make_demo_data
from helpers import paired_crop, paired_op, paired_preprocess, tmpfs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAIN = os.path.join(ROOT, "tools", "main.py")
PACED_MAIN = os.path.join(ROOT, "tests", "paced_main.py")  # main.py, each batch delayed: signals land mid-run
TOTAL_ITERS = 12
SNAPSHOT = 2
PATCH = 96
TINY_G = {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4}
LOG = re.compile(r"Iter: (\d+)/\d+ (lr: \S+ .*?) batch_cost")
SAVED = re.compile(r"saved iter_(\d+)_checkpoint")
TIMEOUT = 120

SEED = int(os.environ.get("FAULTS_SEED", "20251125"))
_rng = random.Random(SEED)
# from 3 (snapshot 2 is complete by then) to 8 (4 iterations left for the kill to land before the end)
_kill_iters = _rng.sample(range(SNAPSHOT + 1, TOTAL_ITERS - 3), 5)
KILLS = [("paddle", _kill_iters[0], "resume"), ("paddle", _kill_iters[1], "resume"),
         ("paddle", _kill_iters[2], "auto_resume"), ("torch", _kill_iters[3], "resume"),
         ("torch", _kill_iters[4], "auto_resume")]


# ---- helpers ---------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """8 pictures of 128 px: 2 shuffled batches of 4 random 96 px crops an epoch, so a resumed run must restore
    the data order and the augmentation, and an iteration outlasts the killer's reaction."""
    root = str(tmp_path_factory.mktemp("fault_data"))
    make_demo_data(root, num_train=8, num_test=1, seed=0, size=128)
    return root


def write_config(folder, data, gt_patch_size=None, num_workers=0, **changes):
    """A tiny PSNR-stage config; ``gt_patch_size`` adds PaddleGAN's random crop and flips (random per batch)."""
    augment = [] if gt_patch_size is None else [
        paired_crop(gt_patch_size), paired_op("PairedRandomHorizontalFlip"), paired_op("PairedRandomVerticalFlip"),
        paired_op("PairedRandomTransposeHW")]
    pre = paired_preprocess(*augment)
    cfg = {
        "total_iters": TOTAL_ITERS, "output_dir": os.path.join(str(folder), "out"), "min_max": "(0., 1.)",
        "seed": 7,
        "model": {"name": "BaseSRModel", "generator": TINY_G, "pixel_criterion": {"name": "L1Loss"}},
        "dataset": {"train": {"name": "SRDataset", "gt_folder": f"{data}/train", "lq_folder": f"{data}/train_X4",
                              "scale": 4, "batch_size": 4, "num_workers": num_workers, "preprocess": pre}},
        "lr_scheduler": {"name": "CosineAnnealingRestartLR", "learning_rate": 1e-3, "periods": [TOTAL_ITERS],
                         "restart_weights": [1], "eta_min": 1e-7},
        "optimizer": {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
        "log_config": {"interval": 1, "visiual_interval": 1000},
        "snapshot_config": {"interval": SNAPSHOT},
    }
    cfg.update(changes)
    path = os.path.join(str(folder), "faults.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f)
    return path, cfg["output_dir"]


def child_env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def logged(lines):
    """{iteration: 'lr: ... <loss>: ...'} of the training log lines (timings left out)."""
    out = {}
    for line in lines:
        m = LOG.search(line)
        if m:
            out[int(m.group(1))] = m.group(2)
    return out


def run_to_end(config, backend, *extra):
    proc = subprocess.run([sys.executable, MAIN, "-c", config, "--backend", backend, *extra], capture_output=True,
                          text=True, env=child_env(), timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout.splitlines()


def run_and_kill(config, backend, kill_iter, delay):
    """Start training, SIGKILL it ``delay`` s after it logs iteration ``kill_iter``; -> all lines it printed."""
    proc = subprocess.Popen([sys.executable, PACED_MAIN, "-c", config, "--backend", backend], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1, env=child_env())
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            m = LOG.search(line)
            if m and int(m.group(1)) >= kill_iter:
                time.sleep(delay)
                os.kill(proc.pid, signal.SIGKILL)
                break
        lines += proc.stdout.read().splitlines()
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, (
        f"the run ended with code {proc.returncode} before the kill at iteration {kill_iter}:\n" + "\n".join(lines))
    return lines


def engine_loader(backend):
    if backend == "paddle":
        from paddle_impl.engine.checkpoint import load_checkpoint
    else:
        from torch_impl.engine.checkpoint import load_checkpoint
    return load_checkpoint


def assert_every_snapshot_loads(folder, backend):
    """Every iter_N_weight / iter_N_checkpoint file loads; checkpoints hold epoch N; all tensors are finite."""
    import numpy as np
    load = engine_loader(backend)
    names = [f for f in os.listdir(folder) if parse_checkpoint_name(f)]
    for name in names:
        iteration, kind, ext = parse_checkpoint_name(name)
        assert ext == EXTENSIONS[backend], name
        state = load(os.path.join(folder, name), kind)
        assert "generator" in state, name
        if kind == "checkpoint":
            assert state["epoch"] == iteration, name
        for key, value in state["generator"].items():
            assert np.isfinite(np.asarray(value.numpy() if hasattr(value, "numpy") else value)).all(), (name, key)
    return names


def run_folders(output_dir):
    return sorted(glob.glob(os.path.join(output_dir, "*")), key=os.path.getmtime)


@pytest.fixture(scope="module")
def reference(data, tmp_path_factory):
    """Uninterrupted runs, one per backend, made on first use: {iteration: 'lr: .. l_pix: ..'}."""
    cache = {}

    def get(backend):
        if backend not in cache:
            folder = tmp_path_factory.mktemp(f"reference_{backend}")
            config, _ = write_config(folder, data, gt_patch_size=PATCH)
            cache[backend] = logged(run_to_end(config, backend))
            assert sorted(cache[backend]) == list(range(1, TOTAL_ITERS + 1))
        return cache[backend]
    return get


# ---- SIGKILL ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend, kill_iter, restart", KILLS,
                         ids=[f"{b}-kill_at_{k}-{r}" for b, k, r in KILLS])
def test_sigkill_then_restart_continues_from_the_last_snapshot_with_the_same_losses(
        backend, kill_iter, restart, data, reference, tmp_path):
    expected = reference(backend)
    config, output_dir = write_config(tmp_path, data, gt_patch_size=PATCH)
    delay = random.Random(f"{SEED}-{backend}-{kill_iter}").uniform(0.0, 0.02)  # saves take a few ms
    killed = run_and_kill(config, backend, kill_iter, delay)
    seen = logged(killed)
    last_logged = max(seen)
    assert all(seen[i] == expected[i] for i in seen), "the killed run differs from the reference before the kill"

    (run_dir,) = run_folders(output_dir)
    assert_every_snapshot_loads(run_dir, backend)
    newest = newest_checkpoint(run_dir, backend)
    assert newest is not None, os.listdir(run_dir)
    snap = parse_checkpoint_name(newest)[0]
    # iteration L is logged before its snapshot is written: the kill may land before or after that save finished
    last_due = last_logged - last_logged % SNAPSHOT
    allowed = {last_due, last_due - SNAPSHOT} if last_logged % SNAPSHOT == 0 else {last_due}
    assert snap in allowed, (snap, last_logged, os.listdir(run_dir))
    confirmed = [int(m.group(1)) for line in killed for m in [SAVED.search(line)] if m]
    assert snap >= max(confirmed, default=0)

    # a kill inside atomic_write leaves its temp file: plant one, newer and half-written, which must be ignored
    with open(newest, "rb") as f:
        half = f.read()[: os.path.getsize(newest) // 2]
    stale = os.path.join(run_dir, f".iter_{snap + SNAPSHOT}_checkpoint.{EXTENSIONS[backend]}.tmp-4242")
    with open(stale, "wb") as f:
        f.write(half)

    args = ["--resume", newest] if restart == "resume" else ["--auto_resume"]
    resumed_lines = run_to_end(config, backend, *args)
    assert any("resumed from" in line and newest in line for line in resumed_lines), "\n".join(resumed_lines)
    resumed = logged(resumed_lines)
    assert min(resumed) == snap + 1
    assert sorted(resumed) == list(range(snap + 1, TOTAL_ITERS + 1))
    assert {i: resumed[i] for i in resumed} == {i: expected[i] for i in resumed}

    folders = run_folders(output_dir)
    assert len(folders) == (2 if restart == "resume" else 1)  # --resume starts a new folder, auto_resume goes on
    for folder in folders:
        assert_every_snapshot_loads(folder, backend)
    assert parse_checkpoint_name(newest_checkpoint(folders[-1], backend))[0] == TOTAL_ITERS


# ---- in-process faults -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def main_module():
    return importlib.import_module("esrgan_twin.commands.train")


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("fault_small_data"))
    make_demo_data(root, num_train=4, num_test=1, seed=0, size=32)
    return root


def tiny_config(tmp_path, small_data, total_iters=6):
    return write_config(tmp_path, small_data, total_iters=total_iters,
                        lr_scheduler={"name": "CosineAnnealingRestartLR", "learning_rate": 1e-3,
                                      "periods": [total_iters], "restart_weights": [1], "eta_min": 1e-7})


def run_in_process(main_module, capsys, config, backend, *extra):
    """tools/main.py's main() in this process (so monkeypatches apply) -> (exit code, stdout, stderr)."""
    code = main_module.main(["-c", config, "--backend", backend, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def framework(backend):
    if backend == "paddle":
        import paddle
        return paddle
    import torch
    return torch


def failing_save(monkeypatch, backend, error, first_failing_call):
    """Replace paddle.save / torch.save: from call ``first_failing_call`` on, write a few bytes and raise OSError."""
    fw = framework(backend)
    real_save = fw.save
    calls = []

    def save(obj, path, *args, **kwargs):
        calls.append(str(path))
        if len(calls) >= first_failing_call:
            with open(path, "wb") as f:
                f.write(b"\x80\x04half a checkpoint")  # what a filling disk leaves before the write fails
            raise OSError(error, os.strerror(error), str(path))
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(fw, "save", save)


def one_error_line(code, err):
    assert code == 2, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


def no_temp_files(folder):
    return not [f for f in os.listdir(folder) if ".tmp" in f]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 512 KB tmpfs (a real file system that fills up); skipped where mounting is not allowed."""
    with tmpfs(tmp_path / "small_fs", "size=512k") as folder:
        yield folder


@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_disk_full_on_a_real_file_system_keeps_the_earlier_snapshots_and_stops_with_one_line(
        backend, main_module, capsys, tmp_path, small_data, small_tmpfs):
    """40 iterations with a snapshot every 2 cannot fit in 512 KB: the save that meets the full disk (torch.save
    raises RuntimeError there, paddle.save OSError) ends the run with one line and leaves no temp file."""
    config, _ = write_config(tmp_path, small_data, total_iters=40, output_dir=small_tmpfs,
                             lr_scheduler={"name": "CosineAnnealingRestartLR", "learning_rate": 1e-3,
                                           "periods": [40], "restart_weights": [1], "eta_min": 1e-7})
    code, out, err = run_in_process(main_module, capsys, config, backend)

    line = one_error_line(code, err)
    assert "disk is full" in line and "output_dir" in line, line
    failed = parse_checkpoint_name(re.search(r"cannot save (\S+):", line).group(1))
    (run_dir,) = run_folders(small_tmpfs)
    assert no_temp_files(run_dir), os.listdir(run_dir)
    assert_every_snapshot_loads(run_dir, backend)
    newest = parse_checkpoint_name(newest_checkpoint(run_dir, backend))[0]
    assert SNAPSHOT <= newest < 40 and failed[0] in (newest, newest + SNAPSHOT), (line, os.listdir(run_dir))


@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_permission_error_when_overwriting_leaves_the_old_file_intact(
        backend, main_module, capsys, tmp_path, small_data, monkeypatch):
    """A run killed between iter_4_weight and iter_4_checkpoint, auto-resumed from iter_2 in its folder: the
    rewrite of iter_4_weight fails (EACCES); the file already there must be byte-identical afterwards."""
    config, output_dir = tiny_config(tmp_path, small_data)
    code, out, err = run_in_process(main_module, capsys, config, backend)
    assert code == 0, err
    (run_dir,) = run_folders(output_dir)
    ext = EXTENSIONS[backend]
    for name in (f"iter_{2 * SNAPSHOT}_checkpoint.{ext}", f"iter_{3 * SNAPSHOT}_weight.{ext}",
                 f"iter_{3 * SNAPSHOT}_checkpoint.{ext}"):
        os.remove(os.path.join(run_dir, name))
    old_weight = os.path.join(run_dir, f"iter_{2 * SNAPSHOT}_weight.{ext}")
    with open(old_weight, "rb") as f:
        before = f.read()

    failing_save(monkeypatch, backend, errno.EACCES, 1)
    code, out, err = run_in_process(main_module, capsys, config, backend, "--auto_resume")

    line = one_error_line(code, err)
    assert old_weight in line and os.strerror(errno.EACCES) in line, line
    assert sorted(logged(out.splitlines())) == list(range(SNAPSHOT + 1, 2 * SNAPSHOT + 1))
    assert run_folders(output_dir) == [run_dir]
    with open(old_weight, "rb") as f:
        assert f.read() == before
    assert no_temp_files(run_dir), os.listdir(run_dir)
    assert_every_snapshot_loads(run_dir, backend)
    assert newest_checkpoint(run_dir, backend) == os.path.join(run_dir, f"iter_{SNAPSHOT}_checkpoint.{ext}")


@pytest.mark.parametrize("backend", ["paddle", "torch"])
@pytest.mark.parametrize("value, bad_iter", [("nan", 2 * SNAPSHOT), ("inf", 2 * SNAPSHOT + 1)])
def test_non_finite_loss_stops_naming_iteration_and_term_and_keeps_the_last_good_checkpoint(
        backend, value, bad_iter, main_module, capsys, tmp_path, small_data, monkeypatch):
    if backend == "paddle":
        from paddle_impl.losses.pixel_loss import L1Loss
    else:
        from torch_impl.losses.pixel_loss import L1Loss
    real = L1Loss.elementwise
    calls = []

    def elementwise(self, pred, target):
        calls.append(1)  # one call per iteration: batch = whole set, accumulate_steps 1, no validation
        out = real(self, pred, target)
        return out * float(value) if len(calls) == bad_iter else out

    monkeypatch.setattr(L1Loss, "elementwise", elementwise)
    config, output_dir = tiny_config(tmp_path, small_data)
    code, out, err = run_in_process(main_module, capsys, config, backend)
    (run_dir,) = run_folders(output_dir)

    line = one_error_line(code, err)
    assert re.search(rf"iteration {bad_iter}\b.*\bl_pix\b.*\b{value}\b", line), line
    assert max(logged(out.splitlines())) == bad_iter - 1
    last_good = (bad_iter - 1) - (bad_iter - 1) % SNAPSHOT
    assert not [f for f in os.listdir(run_dir) if f.startswith(f"iter_{bad_iter}_")], os.listdir(run_dir)
    assert_every_snapshot_loads(run_dir, backend)
    newest = newest_checkpoint(run_dir, backend)
    assert parse_checkpoint_name(newest)[0] == last_good


@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_auto_resume_ignores_run_folders_of_a_config_whose_name_extends_this_one(
        backend, main_module, capsys, tmp_path, small_data):
    """Config ``faults`` must not continue (and fail on) the newer run folder of a config named ``faults-v2``."""
    config, output_dir = tiny_config(tmp_path, small_data)
    other = os.path.join(output_dir, "faults-v2-2030-01-01-00-00")
    os.makedirs(other)
    with open(os.path.join(other, f"iter_100_checkpoint.{EXTENSIONS[backend]}"), "wb") as f:
        f.write(b"another config's checkpoint")
    code, out, err = run_in_process(main_module, capsys, config, backend, "--auto_resume")
    assert code == 0, err
    assert "resumed from" not in out
    assert min(logged(out.splitlines())) == 1


# ---- SIGTERM and loader workers ------------------------------------------------------------------------------------
class Training:
    """``tools/main.py`` in a child process whose output goes to a file (a pipe would stay open in any process
    that outlived it, and reading it would hang the test instead of failing it)."""

    def __init__(self, folder, config, backend, *extra):
        self.log_path = os.path.join(folder, "training.log")
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([sys.executable, PACED_MAIN, "-c", config, "--backend", backend, *extra],
                                         stdout=log, stderr=subprocess.STDOUT, env=child_env())

    def lines(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read().splitlines()

    def wait_for_iteration(self, iteration):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if max(logged(self.lines()), default=0) >= iteration:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.proc.kill()
        raise AssertionError(f"no iteration {iteration} logged:\n" + "\n".join(self.lines()))

    def finish(self):
        """The exit code once the process ends (killed after TIMEOUT seconds)."""
        try:
            return self.proc.wait(timeout=TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_sigterm_saves_the_last_finished_iteration_exits_143_and_resumes_with_the_same_losses(
        backend, data, reference, tmp_path):
    expected = reference(backend)
    config, output_dir = write_config(tmp_path, data, gt_patch_size=PATCH, snapshot_config={"interval": 100})
    run = Training(str(tmp_path), config, backend)
    run.wait_for_iteration(3)
    run.proc.send_signal(signal.SIGTERM)
    assert run.finish() == 128 + signal.SIGTERM, "\n".join(run.lines())
    lines = run.lines()

    assert any("SIGTERM" in line for line in lines), "\n".join(lines)
    (run_dir,) = run_folders(output_dir)
    newest = newest_checkpoint(run_dir, backend)
    assert newest is not None, os.listdir(run_dir)  # no snapshot was due: this one is the signal's
    snap = parse_checkpoint_name(newest)[0]
    assert snap >= max(logged(lines)) >= 3
    resumed = logged(run_to_end(config, backend, "--resume", newest))
    assert sorted(resumed) == list(range(snap + 1, TOTAL_ITERS + 1))
    assert {i: resumed[i] for i in resumed} == {i: expected[i] for i in resumed}


def descendants(pid):
    import psutil
    return psutil.Process(pid).children(recursive=True)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["TERM", "INT", "KILL"])
@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_no_loader_worker_outlives_the_trainer_whatever_signal_ends_it(backend, signum, data, tmp_path):
    import psutil
    config, _ = write_config(tmp_path, data, gt_patch_size=PATCH, num_workers=2, total_iters=10000,
                             lr_scheduler={"name": "CosineAnnealingRestartLR", "learning_rate": 1e-3,
                                           "periods": [10000], "restart_weights": [1], "eta_min": 1e-7})
    run = Training(str(tmp_path), config, backend)
    run.wait_for_iteration(2)
    workers = descendants(run.proc.pid)
    assert len(workers) >= 2, [w.cmdline() for w in workers]
    os.kill(run.proc.pid, signum)
    run.finish()
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive, [(w.pid, w.cmdline()) for w in alive]


# ---- the run folder and output_dir ---------------------------------------------------------------------------------
def run_main(config, backend, *extra):
    return subprocess.run([sys.executable, MAIN, "-c", config, "--backend", backend, *extra], capture_output=True,
                          text=True, env=child_env(), timeout=TIMEOUT)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_a_second_run_on_a_busy_run_folder_is_refused_naming_the_holder(backend, data, tmp_path):
    config, output_dir = write_config(tmp_path, data, total_iters=10000, snapshot_config={"interval": 1},
                                      lr_scheduler={"name": "CosineAnnealingRestartLR", "learning_rate": 1e-3,
                                                    "periods": [10000], "restart_weights": [1], "eta_min": 1e-7})
    first = Training(str(tmp_path), config, backend)
    try:
        first.wait_for_iteration(2)  # iteration 1's checkpoint exists: --auto_resume picks this folder
        (run_dir,) = run_folders(output_dir)
        before = {name for name in os.listdir(run_dir) if not name.startswith(".")}  # no temp files being written
        second = run_main(config, backend, "--auto_resume")
        line = one_error_line(second.returncode, second.stderr)
        assert run_dir in line and f"pid {first.proc.pid}" in line and "in use" in line, line
        assert first.proc.poll() is None  # the first run goes on, its files kept
        assert before <= set(os.listdir(run_dir))
    finally:
        first.proc.send_signal(signal.SIGTERM)
        first.finish()
    assert "resumed from" not in open(os.path.join(run_dir, "log.txt"), encoding="utf-8").read()


@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_a_read_only_output_dir_is_one_line_naming_the_key(backend, data, tmp_path):
    with tmpfs(tmp_path / "read_only", "ro,size=64k") as folder:
        config, _ = write_config(tmp_path, data, output_dir=os.path.join(folder, "runs"))
        proc = run_main(config, backend)
    line = one_error_line(proc.returncode, proc.stderr)
    assert "output_dir" in line and folder in line and "Read-only file system" in line, line


@pytest.mark.slow
@pytest.mark.parametrize("key,value", [("beta2", 0.999), ("name", "AdamW")])
@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_resume_with_a_changed_optimizer_is_one_line_naming_the_key(backend, key, value, data, tmp_path):
    config, output_dir = write_config(tmp_path, data, total_iters=2, snapshot_config={"interval": 1},
                                      lr_scheduler={"name": "CosineAnnealingRestartLR", "learning_rate": 1e-3,
                                                    "periods": [2], "restart_weights": [1], "eta_min": 1e-7})
    run_to_end(config, backend)
    (run_dir,) = run_folders(output_dir)
    checkpoint = newest_checkpoint(run_dir, backend)
    proc = run_main(config, backend, "--resume", checkpoint, "-o", f"optimizer.{key}={value}")
    line = one_error_line(proc.returncode, proc.stderr)
    assert f"optimizer.{key}" in line and checkpoint in line, line
