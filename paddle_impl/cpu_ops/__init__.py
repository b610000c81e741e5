"""Paddle-only C++ CPU ops for the static oneDNN train step, built on first use with Paddle's cpp_extension.

``bias_act(x, bias, slope)`` is ``leaky_relu(x + bias[c], slope)`` (slope 1: the bias add alone) in one op with
its own backward. RRDBNet uses it after each bias-free conv while the static step traces (see
``archs.onednn_train.onednn_train_ops``); it makes that step 1.25-1.35x faster and its first (compile) step 2.5-4x
faster (README's benchmark). ``bf16_ops()`` adds the two ops of bf16 training (``to_bf16`` before each conv,
``bias_act_bf16`` after it; why Paddle's own cast does not serve is in ``bias_act.cc``).

The first call compiles ``bias_act.cc`` with g++ (about 10 s) into ``$ESRGAN_TWIN_CACHE`` (default
``~/.cache/esrgan-twin``), under a name hashed from the source, the flags and the Paddle version; later calls and
processes load the built library. When it cannot be built (not Linux; no compiler; a Paddle other than 3.2.x,
whose internal layout function it calls) or ``ESRGAN_TWIN_FUSED_OPS=0`` is set, ``bias_act_op()`` returns None and
callers use plain Paddle ops (same values, slower); the reason is logged once.
"""
import contextlib
import hashlib
import logging
import os
import sys
import warnings

import paddle

from common_data.cache import cache_dir as shared_cache_dir

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bias_act.cc")
SUPPORTED_PADDLE = "3.2."
CXXFLAGS = ["-O3", "-fno-trapping-math", "-fopenmp-simd"]

_log = logging.getLogger(__name__)
_loaded = {}  # "module" -> the built extension module or None (failed; reason logged)


def fused_ops_enabled():
    return os.environ.get("ESRGAN_TWIN_FUSED_OPS", "1") != "0"


def cache_dir():
    return shared_cache_dir("paddle_ops")


@contextlib.contextmanager
def _file_lock(path):
    """Processes started together build the library once, one after the other."""
    import fcntl  # POSIX; the op is built on Linux only
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextlib.contextmanager
def redirect_fd(fd, file):
    """Send file descriptor ``fd`` (1 or 2: what C++ and child compilers write, past sys.stdout / sys.stderr) to
    the open ``file`` for the block."""
    stream = sys.stdout if fd == 1 else sys.stderr
    stream.flush()
    saved = os.dup(fd)
    os.dup2(file.fileno(), fd)
    try:
        yield
    finally:
        stream.flush()
        os.dup2(saved, fd)
        os.close(saved)


@contextlib.contextmanager
def _output_to(path):
    """Send file descriptor 2 (the compiler's output) and sys.stdout (cpp_extension's "Compiling user custom op"
    print) to ``path`` for the block."""
    with open(path, "w") as fh, redirect_fd(2, fh), contextlib.redirect_stdout(fh):
        yield


class BuildError(RuntimeError):
    pass


def _build():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "No ccache found"
        from paddle.utils.cpp_extension import load
    with open(SOURCE, "rb") as fh:
        digest = hashlib.sha1(fh.read() + " ".join([paddle.__version__, *CXXFLAGS]).encode()).hexdigest()[:10]
    name = f"esrgan_twin_bias_act_{digest}"
    build_dir = os.path.join(cache_dir(), name)
    os.makedirs(build_dir, exist_ok=True)
    log_path = os.path.join(build_dir, "build.log")
    with _file_lock(build_dir + ".lock"):
        library_dir = os.path.join(build_dir, name)  # where cpp_extension.load puts name.so
        if os.path.isfile(os.path.join(library_dir, name + ".so")):
            # built before: load it as load() would, without its setup.py subprocess and its "Compiling" print
            from paddle.utils.cpp_extension.extension_utils import _import_module_from_library
            return _import_module_from_library(name, library_dir)
        _log.info("compiling the fused bias+LeakyReLU op (once, about 10 s) into %s", build_dir)
        try:
            with _output_to(log_path):
                # libphi_core exports the oneDNN -> NCHW layout function the op calls on oneDNN-layout inputs.
                module = load(name=name, sources=[SOURCE], extra_cxx_cflags=CXXFLAGS,
                              extra_ldflags=["-l:libphi_core.so"], build_directory=build_dir, verbose=False)
        except Exception as exc:
            with open(log_path, errors="replace") as fh:
                lines = [ln.strip() for ln in fh if "error" in ln.lower() or "not found" in ln.lower()]
            raise BuildError(f"{(lines or [str(exc)])[0][:200]}; full log: {log_path}") from exc
    return module


def bias_act_op():
    """The compiled ``bias_act(x, bias, slope)`` callable, or None (then use plain Paddle ops)."""
    module = _module()
    return None if module is None else module.bias_act


def bf16_ops():
    """The compiled ``to_bf16`` and ``bias_act_bf16`` (attributes of the returned module), or None: without them
    the static step cannot train in bf16."""
    return _module()


def _module():
    if not fused_ops_enabled():
        return None
    if "module" not in _loaded:
        module = None
        if not sys.platform.startswith("linux"):
            _log.info("the fused bias+LeakyReLU op is built on Linux only: using plain ops")
        elif not paddle.__version__.startswith(SUPPORTED_PADDLE):
            _log.warning("fused bias+LeakyReLU op is built for Paddle %s*, this is %s: using plain ops (slower)",
                         SUPPORTED_PADDLE, paddle.__version__)
        else:
            try:
                module = _build()
            except OSError as exc:  # a read-only or full cache folder: fall back, say where to build instead
                _log.warning("cannot build the fused bias+LeakyReLU op in %s (%s); using plain ops (slower). Set "
                             "ESRGAN_TWIN_CACHE to a writable folder.", cache_dir(), exc.strerror or exc)
            except BuildError as exc:  # no compiler: fall back, say why in one line
                _log.warning("could not build the fused bias+LeakyReLU op (%s); using plain ops (slower). "
                             "Install g++, or set ESRGAN_TWIN_FUSED_OPS=0 to choose the plain ops.", exc)
        _loaded["module"] = module
    return _loaded["module"]
