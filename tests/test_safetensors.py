""".safetensors, the weights format with no code in it: written by the tools, read wherever weights are read.

A tiny RRDBNet x4 is saved as .pdparams and .pth (``convert_weights.save_weights``); ``tools/convert_weights.py``
and ``tools/interpolate.py`` turn those into .safetensors, and each engine must then compute what it computes from
the file they came from (max |diff| <= 1e-5 in process; identical PNGs and metric lines through the tools). A file
written by ``safetensors.torch.save_file`` straight from a BasicSR-named torch RRDBNet (what spandrel and chaiNNer
hand out: ``body.N.rdbK.convJ``) is the independent truth for reading third-party files. Broken files (truncated,
garbage, a pickle named .safetensors) end in one error line.
"""
import os

import cv2
import numpy as np
import pytest
import torch

from common_data.weights import naming as W
from common_data.errors import UserError
from test_bad_input import base_config, error_lines, run_tool, tiny_canonical, write_config
from test_malicious_files import MARKER, assets, load_checkpoint_of, write_paddle_payload  # noqa: F401 (fixture)

TINY = dict(in_nc=3, out_nc=3, nf=8, nb=1, gc=4)


@pytest.fixture(scope="module")
def converted(assets):  # noqa: F811 (the fixture imported above)
    """assets plus g_from_pth.safetensors / g_from_pdparams.safetensors written by tools/convert_weights.py."""
    for src, name in (("good.pth", "g_from_pth.safetensors"), ("good.pdparams", "g_from_pdparams.safetensors")):
        out = os.path.join(assets.root, name)
        proc = run_tool(["convert_weights.py", assets.weights[src], out], cwd=assets.root)
        assert proc.returncode == 0, proc.stderr
        assets.weights[name] = out
    return assets


def net_of(backend, state):
    """Our RRDBNet of ``backend`` with ``state`` (the engine's load_checkpoint result) loaded strictly: the
    generator under the key our writers use (params_ema for .pth, generator for .pdparams) or a flat state dict."""
    flat = next((state[k] for k in ("params_ema", "generator") if isinstance(state.get(k), dict)), state)
    if backend == "paddle":
        from paddle_impl.archs.rrdbnet_arch import RRDBNet
        net = RRDBNet(**TINY)
        missing, unexpected = net.set_state_dict(flat)
    else:
        from torch_impl.archs.rrdbnet_arch import RRDBNet
        net = RRDBNet(**TINY)
        missing, unexpected = net.load_state_dict(flat, strict=False)
    assert not missing and not unexpected, (missing, unexpected)
    net.eval()
    return net


def output_of(backend, net, x):
    if backend == "paddle":
        import paddle
        with paddle.no_grad():
            return net(paddle.to_tensor(x)).numpy()
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def sample(seed=0):
    return np.random.default_rng(seed).random((1, 3, 12, 10), dtype=np.float32)


# ------------------------------------------------------------------------------------------- in-process engines
@pytest.mark.parametrize("source", ["good.pth", "good.pdparams"])
@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_engine_computes_the_same_from_the_safetensors_as_from_its_source(converted, backend, source):
    load = load_checkpoint_of(backend)
    native = converted.weights["good" + {"paddle": ".pdparams", "torch": ".pth"}[backend]]
    safe = converted.weights["g_from_pth.safetensors" if source.endswith(".pth") else "g_from_pdparams.safetensors"]
    x = sample()
    want = output_of(backend, net_of(backend, load(native)), x)
    got = output_of(backend, net_of(backend, load(safe)), x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_safetensors_holds_the_same_arrays_as_its_source(converted):
    from esrgan_twin.commands import convert as cw
    want = cw.load_canonical(converted.weights["good.pdparams"]).state
    for name in ("g_from_pth.safetensors", "g_from_pdparams.safetensors"):
        got = cw.load_canonical(converted.weights[name]).state
        assert set(got) == set(want)
        for key in want:
            np.testing.assert_array_equal(got[key], want[key], err_msg=f"{name} {key}")


# ------------------------------------------------------------------------------------------------ tools
def upscale(a, model, backend, out):
    proc = run_tool(["infer.py", "-i", a.image, "-o", out, "-n", model, "--backend", backend, "--suffix", ""],
                    cwd=a.root)
    assert proc.returncode == 0, proc.stderr
    return cv2.imread(os.path.join(out, os.path.basename(a.image)), cv2.IMREAD_UNCHANGED)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_infer_gives_the_same_picture_from_safetensors(converted, tmp_path, backend):
    native = converted.weights["good" + {"paddle": ".pdparams", "torch": ".pth"}[backend]]
    want = upscale(converted, native, backend, str(tmp_path / "native"))
    for name in ("g_from_pth.safetensors", "g_from_pdparams.safetensors"):
        got = upscale(converted, converted.weights[name], backend, str(tmp_path / name))
        np.testing.assert_array_equal(got, want, err_msg=name)


def evaluation(tmp, a, backend, weights):
    """The validation log lines ``... Metric psnr: ...`` of main.py --evaluate-only --load ``weights``."""
    path = write_config(tmp, base_config(tmp, a.demo), name="eval.yaml")
    proc = run_tool(["main.py", "-c", path, "--backend", backend, "--evaluate-only", "--load", weights], cwd=tmp)
    assert proc.returncode == 0, proc.stderr
    metrics = [line.split("] ", 1)[-1] for line in proc.stdout.splitlines() if "Metric" in line]
    assert metrics, proc.stdout
    return metrics


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_evaluate_only_load_of_safetensors_reports_the_same_metrics(converted, tmp_path, backend):
    native = converted.weights["good" + {"paddle": ".pdparams", "torch": ".pth"}[backend]]
    want = evaluation(str(tmp_path), converted, backend, native)
    assert evaluation(str(tmp_path), converted, backend, converted.weights["g_from_pdparams.safetensors"]) == want


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_training_load_and_pretrain_network_g_take_safetensors(converted, tmp_path, backend):
    tmp = str(tmp_path)
    cfg = base_config(tmp, converted.demo)
    cfg["model"]["pretrain_network_g"] = converted.weights["g_from_pth.safetensors"]
    proc = run_tool(["main.py", "-c", write_config(tmp, cfg), "--backend", backend], cwd=tmp)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_interpolate_writes_a_safetensors_blend_the_engines_read(converted, tmp_path):
    """alpha 0.5 of a net with itself is the net: the blend computes what the source does."""
    out = str(tmp_path / "blend.safetensors")
    proc = run_tool(["interpolate.py", converted.weights["good.pth"], converted.weights["good.pdparams"],
                     "--alpha", "0.5", "-o", out], cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    x = sample(1)
    for backend in ("paddle", "torch"):
        load = load_checkpoint_of(backend)
        native = converted.weights["good" + {"paddle": ".pdparams", "torch": ".pth"}[backend]]
        np.testing.assert_allclose(output_of(backend, net_of(backend, load(out)), x),
                                   output_of(backend, net_of(backend, load(native)), x), rtol=0, atol=1e-5)


# --------------------------------------------------------------------------------------- third-party files
def basicsr_safetensors(path, seed=0):
    """What spandrel / chaiNNer hand out: safetensors.torch.save_file of a BasicSR-named RRDBNet state dict."""
    from safetensors.torch import save_file

    from torch_impl.archs.rrdbnet_arch import RRDBNet
    torch.manual_seed(seed)
    net = RRDBNet(**TINY).eval()
    assert any(k.startswith("body.0.rdb1.conv1.") for k in net.state_dict())
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, path)
    return net


def test_a_basicsr_named_safetensors_runs_the_same_on_both_engines(tmp_path):
    path = str(tmp_path / "4x_thirdparty.safetensors")
    reference = basicsr_safetensors(path)
    x = sample(2)
    with torch.no_grad():
        want = reference(torch.from_numpy(x)).numpy()
    for backend in ("paddle", "torch"):
        got = output_of(backend, net_of(backend, load_checkpoint_of(backend)(path)), x)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5, err_msg=backend)


@pytest.mark.slow
def test_infer_upscales_with_a_basicsr_named_safetensors_on_paddle(converted, tmp_path):
    path = str(tmp_path / "4x_thirdparty.safetensors")
    basicsr_safetensors(path)
    by_paddle = upscale(converted, path, "paddle", str(tmp_path / "p"))
    by_torch = upscale(converted, path, "torch", str(tmp_path / "t"))
    lq = cv2.imread(converted.image, cv2.IMREAD_UNCHANGED)
    assert by_paddle.shape == (lq.shape[0] * 4, lq.shape[1] * 4, 3)
    assert np.abs(by_paddle.astype(int) - by_torch.astype(int)).max() <= 1


@pytest.mark.parametrize("naming", W.GENERATOR_NAMINGS)
def test_every_generator_naming_in_safetensors_reads_back(tmp_path, naming):
    from esrgan_twin.commands import convert as cw
    canon = tiny_canonical(4)
    path = str(tmp_path / f"{naming}.safetensors")
    cw.save_weights(canon, "torch", path, naming=naming)
    got = cw.load_canonical(path)
    for key, value in canon.state.items():
        np.testing.assert_array_equal(got.state[key], value)


# ------------------------------------------------------------------------------------------------ broken files
def truncated(a, tmp):
    with open(a.weights["g_from_pth.safetensors"], "rb") as f:
        data = f.read()
    return data[:len(data) // 2]


BROKEN = [  # (id, file bytes; the line holds the file name and one of these)
    ("truncated", truncated, "corrupt, truncated"),
    ("garbage", lambda a, tmp: b"this is not a model, just some text\n" * 8, "not a weights file"),
    ("header-too-long", lambda a, tmp: (1 << 40).to_bytes(8, "little") + b"{}", "not a weights file"),
    ("header-not-json", lambda a, tmp: (12).to_bytes(8, "little") + b"{not json!!}", "corrupt, truncated"),
]
TOOLS_READING = [
    ("infer-torch", lambda a, tmp, f: ["infer.py", "-i", a.image, "-o", os.path.join(tmp, "r"), "-n", f,
                                       "--backend", "torch"]),
    ("infer-paddle", lambda a, tmp, f: ["infer.py", "-i", a.image, "-o", os.path.join(tmp, "r"), "-n", f,
                                        "--backend", "paddle"]),
    ("convert_weights", lambda a, tmp, f: ["convert_weights.py", f, os.path.join(tmp, "out.pth")]),
    ("main-paddle", lambda a, tmp, f: ["main.py", "-c", write_config(tmp, base_config(tmp, a.demo)),
                                       "--evaluate-only", "--load", f]),
    ("main-torch", lambda a, tmp, f: ["main.py", "-c", write_config(tmp, base_config(tmp, a.demo)),
                                      "--backend", "torch", "--evaluate-only", "--load", f]),
]


@pytest.mark.slow
@pytest.mark.parametrize("content, says", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
@pytest.mark.parametrize("argv", [t[1] for t in TOOLS_READING], ids=[t[0] for t in TOOLS_READING])
def test_a_broken_safetensors_is_one_error_line(converted, tmp_path, argv, content, says):
    tmp = str(tmp_path)
    path = os.path.join(tmp, "broken model.safetensors")
    with open(path, "wb") as f:
        f.write(content(converted, tmp))
    proc = run_tool(argv(converted, tmp, path), cwd=tmp)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "broken model.safetensors" in lines[0] and says in lines[0], lines[0]


@pytest.mark.parametrize("backend", ["paddle", "torch"])
def test_a_pickle_payload_named_safetensors_is_refused_by_its_bytes(tmp_path, backend):
    """The name does not choose the reader: a pickle is a pickle, and goes through the allow-list."""
    marker = str(tmp_path / MARKER)
    path = write_paddle_payload(str(tmp_path / "model.safetensors"), marker)
    with pytest.raises(UserError, match="nothing in it was run"):
        load_checkpoint_of(backend)(path)
    assert not os.path.exists(marker)
