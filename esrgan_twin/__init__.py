"""esrgan-twin: train, convert and ship ESRGAN-family super-resolution models in PaddlePaddle and PyTorch.

    from esrgan_twin import Upscaler
    up = Upscaler.from_pretrained("realesrgan-x4plus-anime")
    out = up.enhance(cv2.imread("in.png", cv2.IMREAD_UNCHANGED))

Also ``convert``, ``export_onnx``, ``export_paddle``, ``interpolate``, ``parity`` and ``train`` (the commands of
``esrgan-twin``), and ``UserError`` / ``CheckFailed`` (the one-line errors they raise). Importing this package
imports neither paddle nor torch: a name is loaded on first use.
"""
import importlib

__version__ = "0.1.0"
__all__ = ["Upscaler", "convert", "export_onnx", "export_paddle", "interpolate", "parity", "train", "UserError",
           "CheckFailed"]
_HOMES = {"UserError": "common_data.errors", "CheckFailed": "esrgan_twin.command_errors"}


def __getattr__(name):
    if name in __all__:
        return getattr(importlib.import_module(_HOMES.get(name, "esrgan_twin.api")), name)
    raise AttributeError(f"module 'esrgan_twin' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
