"""tools/parity.py: the four inference engines agree (and a perturbed weight is caught); both backends train alike."""
import copy
import os
import re
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytest.importorskip("torch")
pytest.importorskip("paddle")

from esrgan_twin.commands import convert as cw
from esrgan_twin.command_errors import run_cli
from esrgan_twin.commands import parity
from common_data.weights import naming as W
from common_data.config.loading import load_config
from common_data.data.demo_data import make_demo_data
from common_data.errors import UserError
from common_data.data.imageio import write_image
from common_data.data.visual import chw_to_uint8
from helpers import paired_crop, paired_op, paired_preprocess

HP = dict(in_nc=3, out_nc=3, nf=8, nb=1, gc=4, scale=4)
PAIR_ROW = re.compile(r"^\| (\S+) vs (\S+) \| ([0-9.e+-]+) \|", re.M)


def tiny_generator(seed=0):
    rng = np.random.default_rng(seed)
    state = {k: rng.standard_normal(s).astype(np.float32) * 0.1 for k, s in W.expected_shapes(W.GENERATOR, HP).items()}
    return W.Canonical(W.GENERATOR, "basicsr", state, dict(HP))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny RRDBNet saved as .pth, two small images, and GT images that are the PyTorch outputs themselves."""
    root = tmp_path_factory.mktemp("parity")
    canon = tiny_generator()
    weights = root / "tiny.pth"
    cw.save_weights(canon, "torch", weights)
    rng = np.random.default_rng(1)
    images, gts = [], []
    forward = cw.forward_fn(cw.build_model(canon, "torch"), "torch")
    for i, (h, w) in enumerate([(12, 15), (9, 11)]):
        img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        write_image(root / "in" / f"img{i}.png", img)
        images.append(img.astype(np.float32) / 255)
        gts.append(chw_to_uint8(forward(images[-1].transpose(2, 0, 1)[None])))
        write_image(root / "gt" / f"img{i}.png", gts[-1])
    return dict(root=root, canon=canon, weights=weights, images=images, gts=gts)


def pair_diffs(text):
    return {(a, b): float(d) for a, b, d in PAIR_ROW.findall(text)}


def test_cli_all_five_engines_agree_within_1e5_and_exit_0(setup, capsys):
    argv = ["-n", str(setup["weights"]), "-i", str(setup["root"] / "in"), "--gt", str(setup["root"] / "gt"),
            "--tolerance", "1e-5"]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: parity.main(argv))
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    diffs = pair_diffs(out)
    assert len(diffs) == 10 and set(e for p in diffs for e in p) == set(parity.ENGINES)
    assert all(d <= 1e-5 for d in diffs.values()), diffs
    # the GT images are the PyTorch outputs: every engine matches them (PSNR inf or nearly so, SSIM 1)
    gt_rows = re.findall(r"^\| (\S+) \| (inf|[0-9.]+) \| ([0-9.]+) \|$", out, re.M)
    assert len(gt_rows) == 5
    for _, psnr, ssim in gt_rows:
        assert psnr == "inf" or float(psnr) > 50
        assert float(ssim) > 0.999


def test_a_perturbed_paddle_weight_fails_the_cross_framework_pairs_only(setup):
    canon = setup["canon"]
    paddle_state = W.to_framework(canon, "paddle")  # PaddleGAN names, as a .pdparams would hold them
    paddle_state["RRDB_trunk.0.RDB1.conv1.weight"] = paddle_state["RRDB_trunk.0.RDB1.conv1.weight"] + 0.05
    perturbed = W.canonicalize(paddle_state, "paddle")
    report = parity.inference_parity({"torch": canon, "paddle": perturbed}, setup["images"])
    assert report.max_diff[("torch", "onnx-torch")] <= 1e-5
    assert report.max_diff[("paddle", "onnx-paddle")] <= 1e-5
    assert report.max_diff[("torch", "paddle")] > 1e-4
    assert report.max_diff[("torch", "ncnn")] <= 1e-5  # ncnn runs the torch-side weights
    with pytest.raises(cw.CheckFailed, match=r"^\S+ vs \S+: max \|diff\| .* > --tolerance 0.0001 \(6 of 10 pairs"):
        parity.check_inference(report, 1e-4)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: parity.check_inference(report, 1e-4))
    assert exit_info.value.code == 1


def test_missing_onnxruntime_skips_the_onnx_engines_with_a_note(setup, monkeypatch):
    real = parity.cw.installed
    monkeypatch.setattr(parity.cw, "installed", lambda m: m != "onnxruntime" and real(m))
    report = parity.inference_parity(setup["canon"], setup["images"][:1])
    assert report.engines == ["torch", "paddle", "ncnn"]
    assert report.pairs == [("torch", "paddle"), ("torch", "ncnn"), ("paddle", "ncnn")]
    assert any("onnx-torch skipped: pip install onnxruntime" in n for n in report.notes)
    assert any("onnx-paddle skipped: pip install onnxruntime" in n for n in report.notes)


def test_one_engine_left_is_a_user_error(setup, monkeypatch):
    monkeypatch.setattr(parity.cw, "installed", lambda m: m == "torch")  # no paddle, onnxruntime or ncnn
    with pytest.raises(UserError, match="needs two engines.*pip install paddlepaddle"):
        parity.inference_parity(setup["canon"], setup["images"][:1])


def test_gt_folder_without_a_matching_name_is_a_one_line_error(setup, tmp_path):
    write_image(tmp_path / "other.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(UserError, match="no GT image named like img0"):
        parity.read_folder(str(setup["root"] / "in"), str(tmp_path))


# ----------------------------------------------------------------------------------------------- training
@pytest.fixture(scope="module")
def train_cfg(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    make_demo_data(root / "demo", num_train=4, num_test=1, size=32)
    pipe = paired_preprocess(paired_crop(16), paired_op("PairedRandomHorizontalFlip"))
    cfg = dict(total_iters=20, output_dir=str(root / "out"), seed=0,
               model={"name": "BaseSRModel", "generator": {"name": "RRDBNet", "nf": 8, "nb": 1, "gc": 4},
                      "pixel_criterion": {"name": "L1Loss"}},
               dataset={"train": {"name": "SRDataset", "gt_folder": str(root / "demo/train"),
                                  "lq_folder": str(root / "demo/train_X4"), "scale": 4, "batch_size": 2,
                                  "num_workers": 0, "preprocess": pipe}},
               lr_scheduler={"name": "CosineAnnealingRestartLR", "learning_rate": 2e-3, "periods": [20],
                             "eta_min": 1e-5},
               optimizer={"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99})
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_training_parity_20_iterations_agree_to_1e4_relative(train_cfg):
    histories = parity.training_parity(load_config(train_cfg), 20, seed=0)
    torch_l, paddle_l = ([h["l_pix"] for h in histories[n]] for n in ("torch", "paddle"))
    assert len(torch_l) == len(paddle_l) == 20
    np.testing.assert_allclose(paddle_l, torch_l, rtol=1e-4)
    parity.check_training(histories, 1e-4)
    assert np.mean(torch_l[-5:]) < np.mean(torch_l[:5])  # it did train: a constant loss would prove nothing


def test_training_parity_catches_a_backend_that_trains_differently(train_cfg):
    cfg = load_config(train_cfg)
    other = copy.deepcopy(cfg)
    other.lr_scheduler.learning_rate = 4e-3
    histories = parity.training_parity(cfg, 3, seed=0, backend_cfgs={"paddle": other})
    # same weights and batch: iteration 1 agrees; the doubled lr shows from iteration 2 on
    assert histories["torch"][0]["l_pix"] == pytest.approx(histories["paddle"][0]["l_pix"], rel=1e-5)
    with pytest.raises(cw.CheckFailed, match=r"^iteration 2: l_pix is .* relative diff"):
        parity.check_training(histories, 1e-4)


def test_cli_train_prints_both_losses_side_by_side(train_cfg, capsys):
    assert parity.main(["--train", "-c", str(train_cfg), "--iters", "2"]) == 0
    out = capsys.readouterr().out
    assert "| iter | torch l_pix | paddle l_pix | max rel diff |" in out
    assert re.search(r"^\| 2 \| [0-9.]+ \| [0-9.]+ \|", out, re.M)
