"""The Python API: ``Upscaler`` (Real-ESRGAN's ``RealESRGANer.enhance`` in shape) and one function per command.

Nothing here imports paddle or torch until a model is loaded or a command runs.
"""
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np

from common_data.errors import UserError


class Upscaler:
    """A super-resolution generator ready to run on images, on the fastest installed engine.

    Build one with :meth:`from_pretrained`; call :meth:`enhance` on decoded images.
    """

    def __init__(self, loaded, tile: int = 0, tile_pad: int = 10, pre_pad: int = 0):
        self._loaded = loaded
        self.tile, self.tile_pad, self.pre_pad = tile, tile_pad, pre_pad

    @classmethod
    def from_pretrained(cls, name_or_path: str, backend: Optional[str] = None, precision: Optional[str] = None,
                        tile: int = 0, tile_pad: int = 10, pre_pad: int = 0,
                        key: Optional[str] = None, device: Optional[str] = None) -> "Upscaler":
        """Load a generator.

        Args:
            name_or_path: a pretrained name (``realesrgan-x4plus-anime``, ``realesrgan-x4plus``,
                ``realesr-animevideov3`` ...), a ``.pth`` / ``.pdparams`` / ``.safetensors`` / ``.onnx`` file, an
                ncnn ``.param`` or a Paddle inference model folder.
            backend: ``onnx``, ``paddle-inference``, ``torch`` or ``paddle``; None picks the fastest installed one
                at the precision and device (torch on a GPU).
            precision: ``auto`` (None: fp16 autocast on a GPU, bf16 on torch when the CPU has AMX / AVX512-BF16,
                else fp32), ``fp32`` (exact), ``bf16`` or ``fp16`` (a GPU's).
            tile: tile size in input pixels (0: the whole image at once); tiles are seam-free.
            tile_pad: context around each tile, in input pixels.
            pre_pad: reflect padding added before and removed after the model.
            key: the top-level key of the weights file (default: params_ema, params, generator, ...).
            device: ``auto`` (None: torch's first CUDA GPU when it sees one, else the CPU), ``cpu``, ``cuda`` or
                ``cuda:N``; GPUs run on the torch backend.

        Returns:
            An Upscaler; ``scale``, ``backend``, ``device``, ``precision`` and ``description`` say what was loaded.
        """
        from esrgan_twin.commands.infer import load_upscaler
        for name, value in (("tile", tile), ("tile_pad", tile_pad), ("pre_pad", pre_pad)):
            if not isinstance(value, int) or value < 0:
                raise UserError(f"{name} must be a whole number of pixels >= 0, got {value!r}")
        loaded = load_upscaler(str(name_or_path), backend, key, precision=precision or "auto", device=device)
        return cls(loaded, tile, tile_pad, pre_pad)

    @property
    def scale(self) -> int:
        """The network's upscaling factor."""
        return self._loaded.scale

    @property
    def backend(self) -> str:
        return self._loaded.backend

    @property
    def device(self) -> str:
        """``cpu`` or ``cuda:N``."""
        return self._loaded.device

    @property
    def precision(self) -> str:
        return self._loaded.precision.name

    @property
    def description(self) -> str:
        return self._loaded.description

    def enhance(self, img: np.ndarray, outscale: Optional[float] = None,
                alpha_upsampler: str = "realesrgan") -> np.ndarray:
        """Upscale one image as OpenCV decodes it.

        Args:
            img: HxW (grey), HxWx3 (BGR) or HxWx4 (BGRA), uint8 or uint16.
            outscale: the final scale (None: the network's); other values resize the output (Lanczos).
            alpha_upsampler: ``realesrgan`` (the alpha channel goes through the model) or ``bicubic``.

        Returns:
            The upscaled image with the input's layout and dtype.
        """
        from esrgan_twin.commands.infer import enhance
        if not isinstance(img, np.ndarray):
            raise UserError(f"enhance: expected a numpy image (as cv2.imread gives), got {type(img).__name__}")
        if alpha_upsampler not in ("realesrgan", "bicubic"):
            raise UserError(f"alpha_upsampler must be 'realesrgan' or 'bicubic', not {alpha_upsampler!r}")
        return enhance(img, self._loaded, outscale, self.tile, self.tile_pad, self.pre_pad, alpha_upsampler)

    def __repr__(self) -> str:
        return f"Upscaler({self.description}, x{self.scale}, {self.backend} on {self.device}, {self.precision})"


def convert(source: str, target: str, to: Optional[str] = None, key: Optional[str] = None,
            layout: Optional[str] = None, naming: Optional[str] = None) -> str:
    """Convert weights between formats (``esrgan-twin convert``).

    Args:
        source: a ``.pth`` / ``.pdparams`` / ``.safetensors`` file, an ncnn ``.param`` or a pretrained name.
        target: ``OUT.pdparams``, ``OUT.pth`` or ``OUT.safetensors``; with ``to="ncnn"`` a prefix for
            ``.param`` + ``.bin``.
        to: ``paddle``, ``torch`` or ``ncnn`` (default: from ``target``'s extension).
        key, layout, naming: as the command's ``--key``, ``--layout``, ``--naming``.

    Returns:
        What was written, in one line.
    """
    return _run_quietly("convert", [source, target], to=to, key=key, layout=layout, naming=naming)


def export_onnx(weights: str, output: str, backend: Optional[str] = None, key: Optional[str] = None) -> str:
    """Export a generator to ONNX with dynamic batch, height and width (``esrgan-twin export-onnx``).

    Args:
        weights: generator weights (any format ``convert`` reads).
        output: the ``.onnx`` file to write.
        backend: the framework that traces the graph, ``torch`` or ``paddle`` (default: the weights' own).
        key: the top-level key of the weights file.

    Returns:
        What was written, in one line.
    """
    return _run_quietly("export_onnx", [weights, output], backend=backend, key=key)


def export_paddle(config: str, weights: str, inputs_size: str = "-1,3,-1,-1", output_dir: Optional[str] = None,
                  key: Optional[str] = None) -> str:
    """Export the config's generator as a Paddle inference model (``esrgan-twin export-paddle``).

    Args:
        config: a config path or shipped config name (its ``model.generator`` and ``export_model`` blocks).
        weights: the generator's weights.
        inputs_size: ``N,C,H,W`` with -1 for dynamic sizes.
        output_dir: the folder to write (default: the command's).
        key: the top-level key of the weights file.

    Returns:
        What was written, in one line.
    """
    from esrgan_twin.shipped_configs import resolve_config
    return _run_quietly("export_paddle", ["-c", resolve_config(config), "--load", weights, f"-s={inputs_size}"],
                        output_dir=output_dir, key=key)


def interpolate(a: str, b: str, alpha: float, output: str, key: Optional[str] = None) -> str:
    """Blend two models of one architecture: ``(1 - alpha) * a + alpha * b`` (ESRGAN's net_interp).

    Args:
        a, b: weights files (or pretrained names) of the same architecture.
        alpha: the weight of ``b``.
        output: ``.pth``, ``.pdparams`` or ``.safetensors`` to write.
        key: the top-level key of both weights files.

    Returns:
        What was written, in one line.
    """
    return _run_quietly("interpolate", [a, b, "--alpha", repr(float(alpha)), "-o", output], key=key)


def parity(model: str, images: str, engines: Optional[Iterable[str]] = None, tolerance: Optional[float] = None,
           key: Optional[str] = None) -> str:
    """Run one model on every installed engine (paddle, torch, onnx, paddle-inference, ncnn) and compare.

    Args:
        model: generator weights or a pretrained name.
        images: a folder of images.
        engines: the engines to compare (default: all installed).
        tolerance: the largest max |diff| allowed between two engines (default: the command's).
        key: the top-level key of the weights file.

    Returns:
        The report (a markdown table). A pair past the tolerance raises ``CheckFailed``.
    """
    argv = ["-n", model, "-i", images]
    if engines:
        argv += ["--engines", *engines]
    return _run_quietly("parity", argv, tolerance=tolerance, key=key)


def train(config: str, overrides: Sequence[str] = (), backend: Optional[str] = None,
          **flags: object) -> int:
    """Train (or resume / evaluate) from a config, as ``esrgan-twin train`` does.

    Args:
        config: a YAML path or a shipped config name (``esrgan_psnr_x4_anime``).
        overrides: ``KEY=VALUE`` strings, as ``-o``.
        backend: ``paddle`` or ``torch`` (default: the config's ``backend:``, else paddle).
        **flags: the command's other flags by name: ``resume``, ``load``, ``evaluate_only``, ``seed``,
            ``precision``, ``debug``, ``auto_resume``.

    Returns:
        The exit status: 0, or 130 / 143 when Ctrl-C / SIGTERM stopped the run (the last iteration is saved).
        Bad input raises ``UserError`` with a one-line message.
    """
    from esrgan_twin.commands.train import train as run_train
    argv = ["-c", config, *_flag_args(flags, backend=backend)]
    if overrides:
        argv += ["-o", *overrides]
    return int(run_train(argv) or 0)


def _flag_args(flags: Dict[str, object], **more: object) -> List[str]:
    """Keyword flags -> command-line arguments (True -> ``--flag``; None and False left out)."""
    out = []
    for name, value in {**flags, **more}.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-") if name != "evaluate_only" else "--evaluate-only"
        out += [flag] if value is True else [flag, str(value)]
    return out


def _run_quietly(command: str, argv: List[str], **flags: object) -> str:
    """Run ``esrgan_twin.<command>.main(argv + flags)``; -> what it printed, stripped. Errors raise."""
    import contextlib
    import importlib
    import io
    module = importlib.import_module(f"esrgan_twin.commands.{command}")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        module.main(argv + _flag_args(flags))
    return printed.getvalue().strip()


__all__ = ["Upscaler", "convert", "export_onnx", "export_paddle", "interpolate", "parity", "train"]
