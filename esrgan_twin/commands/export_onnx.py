"""Export a generator (RRDBNet, SRVGGNetCompact) to ONNX from PyTorch or Paddle, dynamic batch, height and width.

    python tools/export_onnx.py WEIGHTS.pth OUT.onnx [--backend torch] [--verify]
    python tools/export_onnx.py WEIGHTS.pdparams OUT.onnx --backend paddle --verify
    python tools/export_onnx.py anime6b OUT.onnx

WEIGHTS is anything tools/convert_weights.py reads (.pth, .pdparams, ncnn .param or a pretrained name); the
backend defaults to the framework of the weights file. PyTorch uses torch.onnx.export (TorchScript exporter);
Paddle uses paddle.jit.save then paddle2onnx. The graph takes ``input`` (N, C, H, W) float32 RGB in [0, 1] and
gives ``output`` (N, C, H*scale, W*scale). x2/x1 models reflect-pad any size to a multiple of their pixel-unshuffle
factor inside the graph. ``--verify`` runs onnxruntime and the framework on one random batch and prints max |diff|;
past ``--tol`` the exit status is 1.
"""
import argparse
import os


import numpy as np

from esrgan_twin.commands import convert as cw
from esrgan_twin.stage import stage
from common_data.weights import naming as W
from common_data.errors import UserError, first_line

OPSET = 17
INPUT, OUTPUT = "input", "output"


def torch_export_module(model, hparams):
    """A torch RRDBNet wrapped so that x2 / x1 models pad and unshuffle with traceable ops (torch_impl.deploy)."""
    return cw.deploy("torch").export_module(model, hparams)


def paddle_export_layer(model, hparams):
    """A paddle RRDBNet wrapped to unshuffle with reshapes at unknown sizes (paddle_impl.deploy)."""
    return cw.deploy("paddle").export_module(model, hparams)


def export_torch(model, hparams, out_path):
    cw.deploy("torch").export_onnx(model, hparams, out_path, INPUT, OUTPUT, OPSET)


def export_paddle(model, hparams, out_path):
    cw.deploy("paddle").export_onnx(model, hparams, out_path, INPUT, OUTPUT, OPSET)


def onnx_session(path):
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("this needs onnxruntime: pip install onnxruntime") from None
    options = ort.SessionOptions()
    # No memory arena: the arena keeps every tile's activations (hundreds of MB at x4) reserved, which more than
    # doubles peak memory of a tiled run; freeing them costs little next to the convolutions.
    options.enable_cpu_mem_arena = False
    try:
        return ort.InferenceSession(os.fspath(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise UserError(f"cannot load ONNX model {path}: {first_line(e)}") from None


def onnx_forward(path):
    """np NCHW float32 -> np with onnxruntime."""
    session = onnx_session(path)
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: np.ascontiguousarray(x, np.float32)})[0]


def export(weights, out_path, backend=None, key=None):
    """Export ``weights`` to ``out_path``; -> (Canonical, backend, framework forward callable)."""
    canonical = cw.load_canonical(weights, key)
    if not W.is_generator(canonical.arch):
        raise UserError(f"{weights}: ONNX export is for RRDBNet generators and SRVGGNetCompact, this holds "
                        f"{canonical.arch} weights")
    backend = backend or cw.framework_of(weights) or "torch"
    model = cw.build_model(canonical, backend)
    (export_paddle if backend == "paddle" else export_torch)(model, canonical.hparams, out_path)
    return canonical, backend, cw.forward_fn(model, backend)


def verify(onnx_path, framework_forward, canonical, tol, batch=2, size=(50, 77), backend="framework"):
    x = np.random.default_rng(0).random((batch, W.in_channels(canonical.hparams), *size), dtype=np.float32)
    diff = cw.max_abs_diff(onnx_forward(onnx_path)(x), framework_forward(x))
    print(f"verify: max |onnxruntime - {backend}| = {diff:.3g} on a {'x'.join(map(str, x.shape))} random input")
    if not diff <= tol:
        raise cw.CheckFailed(f"onnxruntime and {backend} outputs differ by {diff:.3g} > --tol {tol:g}")
    return diff


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("weights", help=".pth, .pdparams, ncnn .param or a pretrained name (e.g. anime6b)")
    p.add_argument("output", help="the .onnx file to write")
    p.add_argument("--backend", choices=W.FRAMEWORKS, help="framework to export from (default: the weights')")
    p.add_argument("--key", help="top-level key holding the weights (default: params_ema, params, generator...)")
    p.add_argument("--verify", action="store_true", help="compare onnxruntime with the framework, print max |diff|")
    p.add_argument("--tol", type=float, default=1e-4, help="--verify tolerance (default 1e-4)")
    p.add_argument("--verify-size", type=int, nargs=2, default=(50, 77), metavar=("H", "W"),
                   help="input size for --verify (default 50 77, batch 2)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if not args.output.lower().endswith(".onnx"):
        raise UserError(f"{args.output}: the output must end in .onnx")
    with stage(f"exporting {args.weights} to {args.output}"):
        canonical, backend, forward = export(args.weights, args.output, args.backend, args.key)
    print(f"{args.weights}: {canonical.describe()} -> {args.output} (exported from {backend}, opset {OPSET})")
    if args.verify:
        with stage(f"verifying {args.output} with onnxruntime"):
            verify(args.output, forward, canonical, args.tol, size=tuple(args.verify_size), backend=backend)
    return 0

