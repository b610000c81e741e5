"""Import the reference project, ppgan 2.1.0, on paddle 3.x for cross-checks.

ppgan 2.1.0 is installed without its pinned dependencies:
    pip install --no-deps ppgan==2.1.0 && pip install requests six easydict munch natsort imageio scikit-image matplotlib
Its ``models`` package (imported by ``ppgan.metrics`` and ``ppgan.models.generators``) does
``from paddle.fluid.layers.nn import soft_relu``; paddle 3 has no ``paddle.fluid``, so a stub module
with that one function is registered in ``sys.modules`` first (only under that exact name: ``paddle``
itself gets no ``fluid`` attribute). Import ppgan's submodules directly, e.g.
``import_ppgan("ppgan.metrics.psnr_ssim")``, so as little of ppgan as possible has to import.
"""
import importlib
import sys
import types

import pytest

INSTALL = ("pip install --no-deps ppgan==2.1.0 && pip install requests six easydict munch natsort imageio "
           "scikit-image matplotlib")
FLUID_STUB = "paddle.fluid.layers.nn"


def soft_relu(x, threshold=40.0, name=None):
    """paddle 1.x/2.x ``fluid.layers.soft_relu``: log(1 + exp(clip(x, -threshold, threshold)))."""
    import paddle
    return paddle.log1p(paddle.exp(paddle.clip(x, -threshold, threshold)))


def install_paddle_stubs():
    """Register the modules ppgan 2.1.0 imports from paddle 2.x but paddle 3.x no longer has."""
    if FLUID_STUB not in sys.modules:
        stub = types.ModuleType(FLUID_STUB)
        stub.soft_relu = soft_relu
        sys.modules[FLUID_STUB] = stub


def import_ppgan(module="ppgan"):
    """Return ``module`` (``ppgan`` or one of its submodules), or skip the test naming the install command."""
    for dep in ("paddle", "ppgan"):
        try:
            importlib.import_module(dep)
        except ImportError as e:
            pytest.skip(f"{dep} is not importable ({e}); install ppgan with: {INSTALL}")
    install_paddle_stubs()
    return importlib.import_module(module)
