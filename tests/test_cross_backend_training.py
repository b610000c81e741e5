"""Same config + same initial weights + same seed -> the same per-iteration losses on Paddle and on PyTorch.

The shipped configs, shrunk to a tiny generator (test_configs_run.shrink), start from one set of generator weights
saved for each framework (``pretrain_network_g``) and train 20 iterations on each backend in a child process; the
losses the two logs print must agree to 1e-3 relative at every iteration. Both loaders read the same items in the
same order with the same augmentation (common_data.sampling), so what is left to differ is the frameworks' arithmetic.
"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import yaml

from test_bad_input import tiny_canonical
from test_configs_run import ROOT, shrink

ITERS = 20
LOSS = re.compile(r"Iter: (\d+)/\d+ lr: (\S+) (.*?) batch_cost")
TERM = re.compile(r"(\w+): ([-+0-9.e]+)")


def losses(stdout):
    """{iteration: {'lr': .., term: ..}} of a training log."""
    out = {}
    for m in LOSS.finditer(stdout):
        out[int(m.group(1))] = {"lr": float(m.group(2)), **{k: float(v) for k, v in TERM.findall(m.group(3))}}
    return out


@pytest.fixture(scope="module")
def start(tmp_path_factory):
    """Demo data and one tiny generator saved as .pdparams and .pth."""
    import convert_weights as cw
    from common_data.demo_data import make_demo_data
    root = str(tmp_path_factory.mktemp("cross_backend"))
    make_demo_data(os.path.join(root, "demo"), num_train=8, num_test=1, seed=0, size=128)
    weights = {}
    for framework, ext in (("paddle", ".pdparams"), ("torch", ".pth")):
        for net, canonical in (("generator", tiny_canonical(4)), ("discriminator", vgg_discriminator())):
            weights[framework, net] = os.path.join(root, net + ext)
            cw.save_weights(canonical, framework, weights[framework, net])
    return root, weights


def vgg_discriminator():
    """VGGDiscriminator128 weights of the shrunk configs (num_feat 8), small random values."""
    from common_data import weights as W
    hp = dict(in_channels=3, num_feat=8, input_size=128)
    rng = np.random.default_rng(1)
    state = {k: (rng.standard_normal(s) * 0.05).astype(np.float32) if len(s) > 1 else np.zeros(s, np.float32)
             for k, s in W.expected_shapes(W.VGG_DISCRIMINATOR, hp).items()}
    return W.Canonical(W.VGG_DISCRIMINATOR, "basicsr", state, hp)


def train(config_name, backend, start, tmp_path, model=None):
    root, weights = start
    with open(os.path.join(ROOT, "configs", config_name), encoding="utf-8") as f:
        cfg = shrink(yaml.safe_load(f), os.path.join(root, "demo"), str(tmp_path / backend))
    cfg["total_iters"] = ITERS
    if "periods" in cfg["lr_scheduler"]:
        cfg["lr_scheduler"]["periods"] = [ITERS]
    cfg["model"].update(model or {})
    cfg["model"]["pretrain_network_g"] = weights[backend, "generator"]
    if "discriminator" in cfg["model"]:
        cfg["model"]["pretrain_network_d"] = weights[backend, "discriminator"]
    cfg["model"].pop("param_key_g", None)
    cfg["dataset"]["train"]["batch_size"] = 2
    cfg["log_config"]["visiual_interval"] = ITERS
    cfg["snapshot_config"]["interval"] = ITERS
    path = tmp_path / f"{backend}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "main.py"), "-c", str(path), "--backend",
                           backend], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = losses(proc.stdout)
    assert sorted(found) == list(range(1, ITERS + 1)), proc.stdout[-2000:]
    return found


@pytest.mark.slow
@pytest.mark.parametrize("config_name", ["esrgan_psnr_x4_anime.yaml", "realesrnet_x4plus.yaml", pytest.param(
    "esrgan_x4_anime.yaml", marks=pytest.mark.xfail(strict=True, reason=(
        "issue 12: the two ESRGAN models (G/D step order, perceptual and GAN terms) still differ: l_pix agrees "
        "at iteration 1 only to ~5 %, out_d_real from iteration 2")))])
def test_same_config_weights_and_seed_give_the_same_losses_on_both_backends(config_name, start, tmp_path):
    paddle_losses = train(config_name, "paddle", start, tmp_path)
    torch_losses = train(config_name, "torch", start, tmp_path)
    for it in range(1, ITERS + 1):
        assert paddle_losses[it].keys() == torch_losses[it].keys(), it
        for term, value in paddle_losses[it].items():
            assert value == pytest.approx(torch_losses[it][term], rel=1e-3), (it, term)


@pytest.mark.slow
def test_the_edge_loss_of_real_esrnet_compares_against_the_pixel_losss_target_on_both_backends(start, tmp_path):
    """l1_gt_usm: true -> l_pix and l_edge both against gt_usm (decided once, common to both models)."""
    edge = {"edge_criterion": {"name": "EdgeLoss", "loss_weight": 0.1}, "l1_gt_usm": True}
    paddle_losses = train("realesrnet_x4plus.yaml", "paddle", start, tmp_path, edge)
    torch_losses = train("realesrnet_x4plus.yaml", "torch", start, tmp_path, edge)
    assert "l_edge" in paddle_losses[1]
    for it in (1, 2, 10, ITERS):
        for term in ("l_pix", "l_edge"):
            assert paddle_losses[it][term] == pytest.approx(torch_losses[it][term], rel=1e-3), (it, term)
