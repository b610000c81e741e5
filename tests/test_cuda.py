"""What a CUDA GPU runs: fp16 autocast inference on the GPU (``auto``'s choice there) and fp16 / bf16 training with
fp32 master weights, each against fp32. Skipped where torch sees no GPU (CI); a session lent the device machine runs
it there in one call (its image has torch, OpenCV, SciPy and PyYAML; paddle is not needed):

    PYTHONPATH=. python3 -m pytest tests/test_cuda.py -p no:cacheprovider -ra
"""
import math
import os

import numpy as np
import pytest
import torch

from esrgan_twin.commands import convert as cw
from esrgan_twin.commands import infer
from test_bad_input import tiny_canonical
from test_torch_engine import demo, load_cfg, make_cfg, only_run_dir  # noqa: F401  (demo is a fixture)
from torch_impl.engine import checkpoint as ckpt
from torch_impl.engine.trainer import Options, Trainer

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (see this file's docstring)")]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("w") / "tiny.pth")
    cw.save_weights(tiny_canonical(4), "torch", path)
    return path


def test_auto_infers_on_the_first_gpu_in_fp16_close_to_the_cpus_fp32(weights):
    """Outputs are about 0.2; fp16 keeps 11 bits: within 0.01 of the CPU's fp32, and not identical to it."""
    x = np.random.default_rng(0).random((1, 3, 24, 24), dtype=np.float32)
    gpu = infer.load_upscaler(weights, precision="auto")
    cpu = infer.load_upscaler(weights, "torch", precision="fp32", device="cpu")
    assert (gpu.backend, gpu.device, gpu.precision.name) == ("torch", "cuda:0", "fp16")
    a, b = gpu.forward(x), cpu.forward(x)
    assert a.dtype == np.float32 and a.shape == b.shape
    assert 0 < np.abs(a - b).max() < 0.01


def test_fp32_on_the_gpu_matches_the_cpu(weights):
    """cuDNN may run fp32 convolutions in TF32 (10-bit mantissa): within 0.005."""
    x = np.random.default_rng(1).random((1, 3, 24, 24), dtype=np.float32)
    gpu = infer.load_upscaler(weights, precision="fp32")
    cpu = infer.load_upscaler(weights, "torch", precision="fp32", device="cpu")
    assert gpu.device == "cuda:0"
    assert np.abs(gpu.forward(x) - cpu.forward(x)).max() < 5e-3


def test_infer_cli_runs_on_the_gpu_and_says_so(weights, tmp_path, capsys):
    import cv2
    cv2.imwrite(str(tmp_path / "a.png"), (np.random.default_rng(2).random((20, 24, 3)) * 255).astype(np.uint8))
    assert infer.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "-n", weights, "-g", "0"]) == 0
    assert "on torch (cuda:0), precision fp16 (CUDA GPU: fp16 autocast)" in capsys.readouterr().out
    assert cv2.imread(str(tmp_path / "out" / "a_out.png")).shape == (80, 96, 3)


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_gpu_training_tracks_fp32_and_keeps_fp32_weights(demo, tmp_path, precision):  # noqa: F811
    """Same seed, same data, on the GPU: l_pix within 2 % of fp32's for 3 iterations; fp16 scales its gradients
    (GradScaler); checkpoints hold fp32 weights and resume at fp32."""
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    runs = {}
    for name in ("fp32", precision):
        trainer = Trainer(load_cfg(tmp_path, make_cfg(demo, tmp_path / name, total_iters=3, precision=name), name),
                          Options(seed=7))
        assert trainer.precision.name == name and (trainer.model.scaler is not None) == (name == "fp16")
        runs[name] = [h["l_pix"] for h in trainer.train()]
        trainer.close()
    np.testing.assert_allclose(runs[precision], runs["fp32"], rtol=2e-2)
    assert runs[precision] != runs["fp32"]
    resume = os.path.join(only_run_dir(tmp_path / precision), "iter_3_checkpoint.pth")
    assert {v.dtype for v in ckpt.load_checkpoint(resume)["generator"].values()} == {torch.float32}
    cfg = make_cfg(demo, tmp_path / "resumed", total_iters=5, precision="fp32")
    resumed = Trainer(load_cfg(tmp_path, cfg, "resumed"), Options(resume=resume))
    assert resumed.start_iter == 4 and all(math.isfinite(h["l_pix"]) for h in resumed.train())
    resumed.close()


def test_auto_trains_fp16_on_the_gpu(demo, tmp_path):  # noqa: F811
    trainer = Trainer(load_cfg(tmp_path, make_cfg(demo, tmp_path / "out", total_iters=1, precision="auto")),
                      Options(seed=1))
    assert trainer.precision.name == "fp16" and next(trainer.model.net("generator").parameters()).is_cuda
    trainer.close()
