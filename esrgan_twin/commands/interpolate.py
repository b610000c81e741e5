"""Blend two models' weights, ESRGAN's network interpolation (net_interp.py): OUT = (1 - alpha) * A + alpha * B.

    python tools/interpolate.py RRDB_PSNR_x4.pth RRDB_ESRGAN_x4.pth --alpha 0.8 -o interp_08.pth
    python tools/interpolate.py psnr.pdparams gan.pth --alpha 0.3 -o blend.pdparams
    python tools/interpolate.py psnr.safetensors gan.safetensors --alpha 0.5 -o blend.safetensors

A and B are anything tools/convert_weights.py reads (.pth, .pdparams, .safetensors, ncnn .param, a pretrained
name), in any naming (BasicSR, PaddleGAN, ESRGAN-2018): both are canonicalised with common_data.weights.naming first, so
they may come from different frameworks. OUT is written for the framework of its extension (.pdparams: PaddleGAN
layout, .pth: BasicSR layout, .safetensors: a flat state dict in PyTorch conventions). alpha 0 gives A, 1 gives B;
outside [0, 1] it extrapolates. Both must be the same architecture with the same shapes. Integer entries
(BatchNorm's num_batches_tracked) are taken from A.
"""
import argparse
import math
import os


import numpy as np

from esrgan_twin.commands import convert as cw
from common_data.weights import naming as W
from common_data.errors import UserError


def check_same_architecture(a, b, name_a="A", name_b="B"):
    """One-line UserError when two Canonicals differ in architecture, keys or shapes."""
    if a.arch != b.arch:
        raise UserError(f"{name_a} is {a.describe()} but {name_b} is {b.describe()}: interpolate two models of "
                        f"the same architecture")
    problem = W.key_mismatch({k: np.shape(v) for k, v in a.state.items()},
                             {k: np.shape(v) for k, v in b.state.items()}, n=2)
    if problem:
        raise UserError(f"{name_a} ({a.describe()}) and {name_b} ({b.describe()}) differ: {name_b} has {problem} "
                        f"- interpolate two models of the same architecture and size")


def interpolate(a, b, alpha, name_a="A", name_b="B"):
    """Canonical ``(1 - alpha) * a + alpha * b`` (float entries, computed in float64, stored in a's dtype)."""
    alpha = float(alpha)
    if not math.isfinite(alpha):
        raise UserError(f"--alpha {alpha}: must be a finite number (0 gives A, 1 gives B)")
    check_same_architecture(a, b, name_a, name_b)
    state = {}
    for key, va in a.state.items():
        vb = b.state[key]
        if np.issubdtype(va.dtype, np.floating):
            blend = (1.0 - alpha) * va.astype(np.float64) + alpha * vb.astype(np.float64)
            state[key] = blend.astype(va.dtype)
        else:
            state[key] = va.copy()
    return W.Canonical(a.arch, a.naming, state, dict(a.hparams))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("a", metavar="A", help="first weights (alpha 0 gives it): .pth, .pdparams, .safetensors, .param "
                                          "or a name")
    p.add_argument("b", metavar="B", help="second weights (alpha 1 gives it)")
    p.add_argument("--alpha", type=float, required=True, help="weight of B: OUT = (1 - alpha) * A + alpha * B")
    p.add_argument("-o", "--output", required=True,
                   help="OUT.pth (PyTorch), OUT.pdparams (Paddle) or OUT.safetensors (flat, PyTorch conventions)")
    p.add_argument("--key", help="top-level key holding the weights in A and B (default: params_ema, params, ...)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    framework = cw.output_framework(args.output)
    if framework is None:
        raise UserError(f"{args.output}: end the output in .pth (PyTorch), .pdparams (Paddle) or .safetensors")
    out = os.path.abspath(args.output)
    for path in (args.a, args.b):
        if os.path.exists(path) and os.path.abspath(path) == out:
            raise UserError(f"{args.output}: the output would overwrite the input {path}; choose another name")
    a, b = cw.load_canonical(args.a, args.key), cw.load_canonical(args.b, args.key)
    blended = interpolate(a, b, args.alpha, args.a, args.b)
    if not 0.0 <= args.alpha <= 1.0:
        print(f"note: --alpha {args.alpha:g} is outside [0, 1]: extrapolating beyond the two models")
    wrapper = cw.save_weights(blended, framework, args.output)
    where = f"under {wrapper!r}" if wrapper else "flat"
    print(f"{1 - args.alpha:g} x {args.a} + {args.alpha:g} x {args.b}: {blended.describe()} -> {args.output} "
          f"({cw.format_name(args.output, framework)}, {where})")
    return 0

