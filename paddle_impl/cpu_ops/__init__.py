"""Paddle-only C++ CPU ops for the static oneDNN train step, built on first use with Paddle's cpp_extension.

``bias_act(x, bias, slope)`` is ``leaky_relu(x + bias[c], slope)`` (slope 1: the bias add alone) in one op with
its own backward. RRDBNet uses it after each bias-free conv while the static step traces (see
``rrdbnet_arch.onednn_train_ops``); it makes that step about 1.3x faster and its first (compile) step 2-3x faster.

The first call compiles ``bias_act.cc`` with g++ (about 10 s) into ``$ESRGAN_TWIN_CACHE`` (default
``~/.cache/esrgan_twin``), under a name hashed from the source and Paddle version; later calls and processes
load the built library. When it cannot be built (no compiler, another Paddle version than 3.2.x, whose internal
layout function it calls) or ``ESRGAN_TWIN_FUSED_OPS=0`` is set, ``bias_act_op()`` returns None and callers use
plain Paddle ops (same values, slower); the reason is logged once.
"""
import contextlib
import fcntl
import hashlib
import logging
import os
import warnings

import paddle

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bias_act.cc")
SUPPORTED_PADDLE = "3.2."

_log = logging.getLogger(__name__)
_loaded = {}  # "bias_act" -> callable or None (failed; reason logged)


def fused_ops_enabled():
    return os.environ.get("ESRGAN_TWIN_FUSED_OPS", "1") != "0"


def cache_dir():
    root = os.environ.get("ESRGAN_TWIN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "esrgan_twin")
    return os.path.join(root, "paddle_ops")


@contextlib.contextmanager
def _file_lock(path):
    """Processes of one distributed launch build the library once, one after the other."""
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _build():
    from paddle.utils.cpp_extension import load
    with open(SOURCE, "rb") as fh:
        digest = hashlib.sha1(fh.read() + paddle.__version__.encode()).hexdigest()[:10]
    name = f"esrgan_twin_bias_act_{digest}"
    build_dir = os.path.join(cache_dir(), name)
    os.makedirs(build_dir, exist_ok=True)
    with _file_lock(build_dir + ".lock"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No ccache found"
        # libphi_core exports the oneDNN -> NCHW layout function the op calls on oneDNN-layout inputs.
        return load(name=name, sources=[SOURCE], extra_cxx_cflags=["-O3"], extra_ldflags=["-l:libphi_core.so"],
                    build_directory=build_dir, verbose=False).bias_act


def bias_act_op():
    """The compiled ``bias_act(x, bias, slope)`` callable, or None (then use plain Paddle ops)."""
    if not fused_ops_enabled():
        return None
    if "bias_act" not in _loaded:
        op = None
        if not paddle.__version__.startswith(SUPPORTED_PADDLE):
            _log.warning("fused bias+LeakyReLU op is built for Paddle %s*, this is %s: using plain ops (slower)",
                         SUPPORTED_PADDLE, paddle.__version__)
        else:
            try:
                op = _build()
            except Exception as exc:  # no compiler, unwritable cache: fall back, say why in one line
                reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                _log.warning("could not build the fused bias+LeakyReLU op (%s); using plain ops (slower). "
                             "Install g++ or set ESRGAN_TWIN_FUSED_OPS=0 to silence this.", reason[:300])
        _loaded["bias_act"] = op
    return _loaded["bias_act"]
