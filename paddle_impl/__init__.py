"""PaddlePaddle backend: architectures (``archs``), losses (``losses``), models and the training engine.

Mirrors ``torch_impl`` file for file; only framework differences separate the two trees.
"""
import contextlib
import io
import os
import sys
import warnings

# Paddle's noise that says nothing to our users is silenced at the source, before paddle is imported: glog's INFO and
# WARNING lines (PIR banners, the oneDNN version), cpp_extension's "No ccache found", PIR's "place" warning, and the
# OMP_NUM_THREADS banner paddle prints on import whenever more than one thread is set (we set 2-4 on purpose).
os.environ.setdefault("GLOG_minloglevel", "2")
warnings.filterwarnings("ignore", message="No ccache found")
warnings.filterwarnings("ignore", message="Value do not have 'place' interface")
_IMPORT_NOISE = ("WARNING: OMP_NUM_THREADS set to", "PLEASE USE OMP_NUM_THREADS WISELY")


def _import_paddle_quietly():
    """Import paddle with its OMP banner filtered out of stderr (every other line it prints is kept)."""
    if "paddle" in sys.modules:
        return
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            import paddle
        # Paddle's C++ handlers print a "FatalError: Termination signal" stack dump on SIGTERM / SIGINT even when
        # the trainer stops cleanly (its own handlers save and exit 143 / 130): ours decide
        paddle.disable_signal_handler()
    except ImportError:
        pass  # the module that needs paddle says what to install
    finally:
        kept = [line for line in captured.getvalue().splitlines(keepends=True) if not line.startswith(_IMPORT_NOISE)]
        sys.stderr.write("".join(kept))


_import_paddle_quietly()
