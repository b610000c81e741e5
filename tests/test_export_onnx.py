"""tools/export_onnx.py: dynamic batch/H/W graphs from both frameworks, checked with onnxruntime."""
import os
import re
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")
paddle = pytest.importorskip("paddle")

from esrgan_twin.commands import convert as cw
from esrgan_twin.command_errors import run_cli
from esrgan_twin.commands import export_onnx as ex
from common_data.weights import naming as W
from common_data.errors import UserError


def tiny(scale, seed=0):
    hp = dict(in_nc=3, out_nc=3, nf=8, nb=1, gc=4, scale=scale)
    rng = np.random.default_rng(seed)
    state = {k: rng.standard_normal(s).astype(np.float32) * 0.1 for k, s in W.expected_shapes(W.GENERATOR, hp).items()}
    return W.Canonical(W.GENERATOR, "basicsr", state, hp)


def save(canonical, tmp_path, framework):
    path = tmp_path / ("w.pdparams" if framework == "paddle" else "w.pth")
    cw.save_weights(canonical, framework, path)
    return path


@pytest.mark.parametrize("framework,scale", [("torch", 4), ("torch", 2), ("paddle", 4), ("paddle", 1)])
def test_onnx_matches_the_framework_at_odd_sizes_and_batch_2(tmp_path, framework, scale):
    canon = tiny(scale)
    out = tmp_path / "m.onnx"
    _, backend, forward = ex.export(save(canon, tmp_path, framework), out)
    assert backend == framework
    x = np.random.default_rng(1).random((2, 3, 50, 77), dtype=np.float32)
    got = ex.onnx_forward(out)(x)
    assert got.shape == (2, 3, 50 * scale, 77 * scale)
    np.testing.assert_allclose(got, forward(x), atol=1e-5)
    # and the other framework agrees too: the ONNX graph computes the converted model, not something else
    other = "paddle" if framework == "torch" else "torch"
    np.testing.assert_allclose(got, cw.forward_fn(cw.build_model(canon, other), other)(x), atol=1e-5)


def test_graph_has_symbolic_batch_height_width(tmp_path):
    import onnx
    ex.export(save(tiny(4), tmp_path, "torch"), tmp_path / "m.onnx")
    dims = onnx.load(str(tmp_path / "m.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert [bool(d.dim_param) for d in dims] == [True, False, True, True]
    assert dims[1].dim_value == 3


def test_cli_verify_prints_the_difference(tmp_path, capsys):
    weights = save(tiny(4), tmp_path, "torch")
    assert ex.main([str(weights), str(tmp_path / "m.onnx"), "--backend", "paddle", "--verify",
                    "--verify-size", "9", "14"]) == 0
    captured = capsys.readouterr()
    assert "exported from paddle" in captured.out and "verify: max |onnxruntime - paddle| = " in captured.out
    # each long step says when it starts and how long it took (stdout: stderr holds errors alone)
    assert re.search(r"^exporting .*m\.onnx \.\.\.\n.*m\.onnx: done in [0-9.]+ s$", captured.out, re.M | re.S)
    assert re.search(r"^verifying .* with onnxruntime: done in [0-9.]+ s$", captured.out, re.M)
    assert captured.err == ""


def test_verify_past_tolerance_exits_with_status_1(tmp_path):
    canon = tiny(4)
    ex.export(save(canon, tmp_path, "torch"), tmp_path / "m.onnx")
    forward = cw.forward_fn(cw.build_model(canon, "torch"), "torch")
    with pytest.raises(cw.CheckFailed, match="differ by"):
        ex.verify(tmp_path / "m.onnx", lambda x: forward(x) + 1e-3, canon, tol=1e-4, size=(8, 8))
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: ex.verify(tmp_path / "m.onnx", lambda x: forward(x) + 1e-3, canon, 1e-4, size=(8, 8)))
    assert exit_info.value.code == 1


def test_discriminator_weights_are_refused(tmp_path):
    hp = {"num_in_ch": 3, "num_feat": 4, "skip_connection": True}
    state = {k: np.zeros(s, np.float32) for k, s in W.expected_shapes(W.UNET_DISCRIMINATOR, hp).items()}
    path = tmp_path / "d.pth"
    cw.save_weights(W.Canonical(W.UNET_DISCRIMINATOR, "basicsr", state, hp), "torch", path)
    with pytest.raises(UserError, match="RRDBNet generators.*UNetDiscriminatorSN"):
        ex.export(path, tmp_path / "d.onnx")


def test_output_must_be_onnx(tmp_path):
    with pytest.raises(UserError, match="must end in .onnx"):
        ex.main(["anime6b", str(tmp_path / "x.pth")])
