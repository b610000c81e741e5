"""Paddle engine: lr schedules, optimizer state in checkpoints, atomic saves, the trainer (resume, NaN, Ctrl-C)."""
import math
import os
import types

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import paddle  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from common_data.config.loading import load_config  # noqa: E402
from common_data.data.demo_data import make_demo_data  # noqa: E402
from common_data.errors import UserError  # noqa: E402
from helpers import paired_crop, paired_op, paired_preprocess  # noqa: E402
from paddle_impl.engine import checkpoint as ckpt  # noqa: E402
from paddle_impl.engine.lr_scheduler import build_lr_scheduler  # noqa: E402
from paddle_impl.engine.run import run  # noqa: E402
from paddle_impl.engine.trainer import Trainer  # noqa: E402
from paddle_impl.models import build_model  # noqa: E402

TINY_G = {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4}


def lrs(cfg, steps):
    sched = build_lr_scheduler(cfg)
    out = []
    for _ in range(steps):
        out.append(sched.last_lr)
        sched.step()
    return out


def cosine_restart(t, lr0, periods, weights, eta_min):
    ends = np.cumsum(periods)
    i = min(int(np.searchsorted(ends, min(t, ends[-1]))), len(periods) - 1)
    start = ends[i - 1] if i else 0
    t = min(t, ends[-1])
    return eta_min + weights[i] * 0.5 * (lr0 - eta_min) * (1 + math.cos(math.pi * (t - start) / periods[i]))


COSINE = {"name": "CosineAnnealingRestartLR", "learning_rate": 2e-4, "periods": [4, 6], "restart_weights": [1, 0.5],
          "eta_min": 1e-7}


def test_cosine_restart_matches_the_closed_form():
    got = lrs(COSINE, 12)
    assert got[0] == pytest.approx(2e-4) and got[4] == pytest.approx(1e-7)  # period end reaches eta_min
    assert got[5] == pytest.approx(1e-7 + 0.5 * 0.5 * (2e-4 - 1e-7) * (1 + math.cos(math.pi / 6)))  # restarted
    for t, value in enumerate(got):
        assert value == pytest.approx(cosine_restart(t, 2e-4, [4, 6], [1, 0.5], 1e-7), rel=1e-9)


def test_cosine_restart_matches_paddlegan():
    from ppgan_compat import import_ppgan
    ref_module = import_ppgan("ppgan.solver.lr_scheduler")
    ref = ref_module.CosineAnnealingRestartLR(2e-4, [4, 6], [1, 0.5], 1e-7)
    expected = []
    for _ in range(10):
        expected.append(ref.last_lr)
        ref.step()
    np.testing.assert_allclose(lrs(COSINE, 10), expected, rtol=1e-12)


def test_multistep_decay_and_its_basicsr_name():
    cfg = {"name": "MultiStepDecay", "learning_rate": 1.0, "milestones": [2, 5], "gamma": 0.5}
    expected = [1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]
    np.testing.assert_allclose(lrs(cfg, 7), expected)
    np.testing.assert_allclose(lrs(dict(cfg, name="MultiStepLR"), 7), expected)


def test_schedules_give_the_same_lr_as_the_torch_side():
    torch_sched = pytest.importorskip("torch_impl.engine.lr_scheduler")
    import torch
    for cfg in (COSINE, {"name": "MultiStepLR", "learning_rate": 1e-4, "milestones": [3, 6], "gamma": 0.5}):
        opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=cfg["learning_rate"])
        sched = torch_sched.build_lr_scheduler(cfg, opt)
        theirs = []
        for _ in range(12):
            theirs.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        np.testing.assert_allclose(lrs(cfg, 12), theirs, rtol=1e-9)


# ---- checkpoints ------------------------------------------------------------------------------------------------
def test_failing_writer_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = str(tmp_path / "iter_1_checkpoint.pdparams")
    ckpt.save_checkpoint(path, {"epoch": 1})

    def broken_save(obj, target):
        with open(target, "wb") as f:
            f.write(b"half a file")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(paddle, "save", broken_save)
    with pytest.raises(UserError, match="cannot save .*iter_1_checkpoint.pdparams: .*disk is full"):
        ckpt.save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert ckpt.load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["iter_1_checkpoint.pdparams"]


@pytest.mark.parametrize("name,content,message", [
    ("missing.pdparams", None, "not found: .*missing.pdparams"),
    ("corrupt.pdparams", b"\x80\x04garbage", "cannot read checkpoint .*corrupt.pdparams"),
    ("net.pth", b"PK\x03\x04", "net.pth is a PyTorch file.*convert_weights.py --to paddle"),
])
def test_bad_checkpoint_files_give_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=message) as e:
        ckpt.load_checkpoint(str(path))
    assert "\n" not in str(e.value)


def test_optimizer_state_survives_new_tensor_names():
    def model():
        m = build_model({"name": "BaseSRModel", "generator": TINY_G, "pixel_criterion": {"name": "L1Loss"}})
        m.setup_optimizers({"name": "Adam", "net_names": ["generator"]},
                           {"name": "MultiStepDecay", "learning_rate": 1e-3, "milestones": [9]})
        return m
    a = model()
    a.setup_input({"lq": np.ones((1, 3, 4, 4), np.float32), "gt": np.zeros((1, 3, 16, 16), np.float32)})
    a.train_iter()
    state = a.training_state()
    assert "generator.conv_first.weight_moment1_0" in state["optim"]
    b = model()  # same process: paddle gives its tensors new names
    assert b.nets["generator"].conv_first.weight.name != a.nets["generator"].conv_first.weight.name
    b.load_training_state(state, "test")
    again = b.training_state()["optim"]
    for key, value in state["optim"].items():
        if hasattr(value, "numpy"):
            np.testing.assert_array_equal(again[key].numpy(), value.numpy())


# ---- trainer ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_demo_data(str(root), num_train=4, num_test=2, seed=0, size=32)
    return str(root)


def write_config(tmp_path, demo, **changes):
    pre_test = paired_preprocess()
    pre_train = paired_preprocess(paired_crop(16), paired_op("PairedRandomHorizontalFlip"))
    cfg = {
        "total_iters": 4, "output_dir": str(tmp_path / "out"), "min_max": "(0., 1.)", "seed": 3,
        "model": {"name": "BaseSRModel", "generator": TINY_G, "pixel_criterion": {"name": "L1Loss"},
                  "ema_decay": 0.5},
        "dataset": {
            "train": {"name": "SRDataset", "gt_folder": f"{demo}/train", "lq_folder": f"{demo}/train_X4",
                      "scale": 4, "batch_size": 2, "num_workers": 0, "preprocess": pre_train},
            "test": {"name": "SRDataset", "gt_folder": f"{demo}/test", "lq_folder": f"{demo}/test_X4", "scale": 4,
                     "preprocess": pre_test}},
        "lr_scheduler": {"name": "CosineAnnealingRestartLR", "learning_rate": 1e-3, "periods": [4],
                         "restart_weights": [1], "eta_min": 1e-6},
        "optimizer": {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
        "validate": {"interval": 2, "save_img": True,
                     "metrics": {"psnr": {"name": "PSNR", "crop_border": 4, "test_y_channel": False}}},
        "log_config": {"interval": 1, "visiual_interval": 2},
        "snapshot_config": {"interval": 2},
    }
    for key, value in changes.items():
        cfg[key] = value
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def trainer(path, **args):
    return Trainer(load_config(path), types.SimpleNamespace(**args))


def test_training_writes_the_run_folder(tmp_path, demo):
    t = trainer(write_config(tmp_path, demo))
    history = t.train()
    t.close()
    assert len(history) == 4 and all("l_pix" in h for h in history)
    files = set(os.listdir(t.run_dir))
    assert os.path.basename(t.run_dir).startswith("tiny-")
    assert {"config.yaml", "log.txt", "iter_2_weight.pdparams", "iter_4_checkpoint.pdparams", "visual_train",
            "visual_test"} <= files
    log = open(os.path.join(t.run_dir, "log.txt")).read()
    assert "Iter: 4/4" in log and "Iter: 4 Metric psnr:" in log
    assert sorted(os.listdir(os.path.join(t.run_dir, "visual_test"))) == [
        "iter_2_test_0000.png", "iter_2_test_0001.png", "iter_4_test_0000.png", "iter_4_test_0001.png"]
    state = ckpt.load_checkpoint(os.path.join(t.run_dir, "iter_4_checkpoint.pdparams"))
    assert state["epoch"] == 4 and state["seed"] == 3 and {"generator", "optim", "lr_scheduler", "ema"} <= set(state)


def test_resume_continues_with_equal_state_and_losses(tmp_path, demo):
    path = write_config(tmp_path, demo)
    full = trainer(path)
    losses = full.train()
    full.close()
    checkpoint = os.path.join(full.run_dir, "iter_2_checkpoint.pdparams")
    resumed = trainer(path, resume=checkpoint)
    assert resumed.start_iter == 3
    saved = ckpt.load_checkpoint(checkpoint)
    for key, value in resumed.model.ema.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), saved["ema"]["generator"][key].numpy())
    assert resumed.model.lr_scheduler.last_epoch == 2
    tail = resumed.train()
    resumed.close()
    assert len(tail) == 2
    for a, b in zip(tail, losses[2:]):
        assert a["l_pix"] == pytest.approx(b["l_pix"], rel=1e-5)
    end_a = ckpt.load_checkpoint(os.path.join(full.run_dir, "iter_4_weight.pdparams"))["generator"]
    end_b = ckpt.load_checkpoint(os.path.join(resumed.run_dir, "iter_4_weight.pdparams"))["generator"]
    for key in end_a:
        np.testing.assert_allclose(end_a[key].numpy(), end_b[key].numpy(), rtol=1e-5, atol=1e-7)


def test_auto_resume_picks_the_newest_checkpoint_of_the_config(tmp_path, demo):
    path = write_config(tmp_path, demo, total_iters=2, lr_scheduler={"name": "MultiStepDecay", "learning_rate": 1e-3,
                                                                      "milestones": [10]})
    first = trainer(path)
    first.train()
    first.close()
    again = trainer(path, auto_resume=True)
    again.close()
    assert again.run_dir == first.run_dir and again.start_iter == 3


def test_nan_loss_stops_naming_iteration_and_term(tmp_path, demo):
    path = write_config(tmp_path, demo)
    t = trainer(path)
    t.model.pixel_criterion.loss_weight = float("nan")
    with pytest.raises(UserError, match="iteration 1: loss l_pix is nan"):
        t.train()
    t.close()


def test_ctrl_c_saves_the_last_finished_iteration_and_exits_130(tmp_path, demo, monkeypatch):
    path = write_config(tmp_path, demo, snapshot_config={"interval": 100}, validate={"interval": 100})
    original = Trainer.train_step

    def interrupt_at_3(self, *args):
        if self.current_iter == 3:
            raise KeyboardInterrupt
        return original(self, *args)
    monkeypatch.setattr(Trainer, "train_step", interrupt_at_3)
    out = str(tmp_path / "out")
    assert run(load_config(path), types.SimpleNamespace()) == 130
    (run_dir,) = os.listdir(out)
    assert ckpt.load_checkpoint(os.path.join(out, run_dir, "iter_2_checkpoint.pdparams"))["epoch"] == 2
    assert not os.path.exists(os.path.join(out, run_dir, "iter_3_checkpoint.pdparams"))


def test_gradient_accumulation_counts_optimizer_steps(tmp_path, demo):
    path = write_config(tmp_path, demo, accumulate_steps=2, total_iters=2, validate={"interval": 100},
                        lr_scheduler={"name": "MultiStepDecay", "learning_rate": 1e-3, "milestones": [10]})
    t = trainer(path)
    t.train()
    t.close()
    state = ckpt.load_checkpoint(os.path.join(t.run_dir, "iter_2_checkpoint.pdparams"))
    beta1_pow = state["optim"]["generator.conv_first.weight_beta1_pow_acc_0"]
    # two optimizer steps for four micro-batches (paddle keeps beta1 ** (steps + 1))
    assert float(beta1_pow.numpy().ravel()[0]) == pytest.approx(0.9 ** 3)
    assert state["lr_scheduler"]["last_epoch"] == 2


def test_visualdl_logs_scalars_when_enabled(tmp_path, demo):
    pytest.importorskip("visualdl")
    path = write_config(tmp_path, demo, enable_visualdl=True, total_iters=2,
                        lr_scheduler={"name": "MultiStepDecay", "learning_rate": 1e-3, "milestones": [10]})
    t = trainer(path)
    t.train()
    t.close()
    assert any(f.startswith("vdlrecords") for f in os.listdir(t.run_dir))


def test_evaluate_only_without_weights_is_refused(tmp_path, demo):
    with pytest.raises(UserError, match="--evaluate-only needs .*--load"):
        run(load_config(write_config(tmp_path, demo)), types.SimpleNamespace(evaluate_only=True))
