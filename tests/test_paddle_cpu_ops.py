"""paddle_impl.cpu_ops: the fused bias+LeakyReLU op against its formula, and the fallback when it cannot build."""
import logging

import numpy as np
import paddle
import pytest

import paddle_impl.cpu_ops as cpu_ops
from helpers import tmpfs
from paddle_impl.cpu_ops import bias_act_op


@pytest.mark.parametrize("slope", [0.2, 1.0])
def test_fused_bias_act_equals_its_formula(slope):
    """bias_act(x, b, slope) = leaky_relu(x + b[c]); dx = g * (1 where x + b >= 0 else slope), db = sum of dx."""
    op = bias_act_op()
    assert op is not None
    rng = np.random.default_rng(6)
    x = rng.random((2, 3, 5, 4), dtype=np.float32) - 0.5
    b = np.array([0.1, -0.2, 0.0], np.float32)
    x[0, 2, 0, :] = 0.0  # x + b == 0 exactly: gradient 1
    g = rng.random(x.shape, dtype=np.float32)
    xt, bt = paddle.to_tensor(x, stop_gradient=False), paddle.to_tensor(b, stop_gradient=False)
    out = op(xt, bt, slope)
    (out * paddle.to_tensor(g)).sum().backward()
    pre = x + b[None, :, None, None]
    np.testing.assert_allclose(out.numpy(), np.where(pre >= 0, pre, slope * pre), rtol=1e-6, atol=1e-7)
    dx = np.where(pre >= 0, g, slope * g)
    np.testing.assert_allclose(xt.grad.numpy(), dx, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(bt.grad.numpy(), dx.sum(axis=(0, 2, 3)), rtol=1e-5, atol=1e-6)


def test_without_a_compiler_the_op_falls_back_with_one_warning(monkeypatch, tmp_path, caplog):
    """A real build with no compiler on PATH: None, and one warning naming the cause and the build log."""
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("ESRGAN_TWIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_ops, "_loaded", {})
    with caplog.at_level(logging.WARNING, logger=cpu_ops.__name__):
        assert bias_act_op() is None
        assert bias_act_op() is None
    (record,) = caplog.records
    message = record.getMessage()
    assert "not found" in message and "build.log" in message and "plain ops" in message, message


def test_a_read_only_cache_folder_falls_back_with_one_warning_naming_it(monkeypatch, tmp_path, caplog):
    """A real read-only file system as $ESRGAN_TWIN_CACHE: None, and one warning naming the folder and the variable."""
    with tmpfs(tmp_path / "cache", "ro,size=64k") as cache:
        monkeypatch.setenv("ESRGAN_TWIN_CACHE", cache)
        monkeypatch.setattr(cpu_ops, "_loaded", {})
        with caplog.at_level(logging.WARNING, logger=cpu_ops.__name__):
            assert bias_act_op() is None
    (record,) = caplog.records
    message = record.getMessage()
    assert cache in message and "ESRGAN_TWIN_CACHE" in message and "plain ops" in message, message


def test_other_paddle_versions_use_plain_ops(monkeypatch, caplog):
    monkeypatch.setattr(cpu_ops, "_loaded", {})
    monkeypatch.setattr(paddle, "__version__", "3.3.0")
    monkeypatch.setattr(cpu_ops, "_build", lambda: pytest.fail("must not build for another Paddle version"))
    with caplog.at_level(logging.WARNING, logger=cpu_ops.__name__):
        assert bias_act_op() is None
    assert "3.3.0" in caplog.text


def test_other_platforms_use_plain_ops(monkeypatch):
    monkeypatch.setattr(cpu_ops, "_loaded", {})
    monkeypatch.setattr(cpu_ops.sys, "platform", "win32")
    monkeypatch.setattr(cpu_ops, "_build", lambda: pytest.fail("must not build off Linux"))
    assert bias_act_op() is None


@pytest.mark.slow
def test_a_built_op_loads_from_the_cache_silently_without_rebuilding(tmp_path):
    """The second process loads the library it finds (paddle's load() would rerun its setup.py build, print
    "Compiling user custom op" and take seconds to a minute every time)."""
    import glob
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = "from paddle_impl.cpu_ops import bias_act_op; assert bias_act_op() is not None"
    env = dict(os.environ, ESRGAN_TWIN_CACHE=str(tmp_path), PYTHONPATH=root)
    runs = []
    for _ in range(2):
        runs.append(subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True,
                                   timeout=600))
        assert runs[-1].returncode == 0, runs[-1].stderr[-2000:]
        if len(runs) == 1:
            libraries = glob.glob(str(tmp_path / "**" / "*.so"), recursive=True)
            assert len(libraries) == 1
            built = os.path.getmtime(libraries[0])
    assert "Compiling" not in runs[0].stdout + runs[0].stderr  # the build's own output goes to its build.log
    assert runs[1].stdout == "" and "Compiling" not in runs[1].stderr
    assert os.path.getmtime(libraries[0]) == built
