"""Export a config's generator as a Paddle inference model (PaddleGAN's tools/export_model.py).

    python tools/export_model.py -c configs/esrgan_psnr_x4_anime.yaml --load iter_50000_weight.pdparams \
        -s 1,3,128,128
    python tools/export_model.py -c CONFIG --load net_g.pth -s -1,3,-1,-1 --output_dir inference_model

The generator is built from the config's ``model.generator`` with paddle_impl and loaded from ``--load``: any
weights tools/convert_weights.py reads (a PaddleGAN iter_N_weight/checkpoint .pdparams, a BasicSR .pth, an ncnn
.param or a pretrained name). Each net listed under the config's ``export_model:`` (default: the generator) is
written with paddle.jit.save to ``<output_dir>/<model name>_<net name>`` (.json graph, or .pdmodel with the old IR,
plus .pdiparams) for paddle.inference. ``-s`` gives the input shape N,C,H,W (';' between the inputs of several
nets); a -1 entry is a dynamic dimension. x2/x1 models reflect-pad any H/W to their pixel-unshuffle factor in the
graph. Run the result with paddle_impl/inference.py or ``tools/infer.py -n <output_dir> --backend paddle-inference``.
"""
import argparse
import hashlib
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import numpy as np

from esrgan_twin.commands import convert as cw
from common_data.weights import naming as W
from common_data.cache import cache_dir
from common_data.config.loading import load_config
from common_data.training.run_folders import run_config_hint
from esrgan_twin.shipped_configs import resolve_config
from esrgan_twin.stage import stage
from common_data.errors import ConfigError, UserError

DEFAULT_OUTPUT_DIR = "inference_model"
DEFAULT_EXPORTS = [{"name": "generator", "inputs_num": 1}]
INPUT = "input"
SHAPE_FLAGS = ("-s", "--inputs_size", "--inputs-size")


def parse_inputs_size(text):
    """'1,3,128,128;-1,3,-1,-1' -> [[1, 3, 128, 128], [-1, 3, -1, -1]] (PaddleGAN's -s format)."""
    shapes = []
    for part in str(text).split(";"):
        try:
            shape = [int(v) for v in part.split(",")]
        except ValueError:
            raise UserError(f"-s {text!r}: expected integers N,C,H,W (-1 for a dynamic one), e.g. 1,3,128,128") \
                from None
        if len(shape) != 4 or any(v == 0 or v < -1 for v in shape):
            raise UserError(f"-s {text!r}: each input shape is N,C,H,W with positive sizes or -1, got {part!r}")
        shapes.append(shape)
    return shapes


def model_files(prefix):
    """The graph and parameter files paddle.jit.save wrote for ``prefix`` (.json with PIR, else .pdmodel)."""
    graph = next((prefix + ext for ext in (".json", ".pdmodel") if os.path.isfile(prefix + ext)), None)
    return [p for p in (graph, prefix + ".pdiparams") if p and os.path.isfile(p)]


def is_complete(prefix):
    """True when both the graph and the parameters of ``prefix`` exist."""
    return len(model_files(prefix)) == 2


def save_inference_model(model, hparams, prefix, shape=None):
    """paddle.jit.save an eval-mode RRDBNet (x2/x1 wrapped to take any H/W) -> the files written.

    ``shape`` is N,C,H,W with -1 for dynamic entries; default all of N, H, W dynamic.
    """
    channels = W.in_channels(hparams)
    shape = shape or [-1, channels, -1, -1]
    if shape[1] != channels:
        raise UserError(f"-s {','.join(map(str, shape))}: the generator takes {channels} channels, not {shape[1]}")
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    cw.deploy("paddle").save_inference_model(model, hparams, prefix, shape, INPUT)
    return model_files(prefix)


def load_generator(gen_cfg, weights, key=None, where="model.generator"):
    """Build ``gen_cfg`` with paddle_impl and load ``weights`` into it -> (eval Layer, hparams of the weights)."""
    deploy = cw.deploy("paddle")
    from paddle_impl.archs import build_arch
    if not isinstance(gen_cfg, dict):
        raise ConfigError(f"{where}: missing; the config needs a model.generator block to export")
    model = build_arch(dict(gen_cfg), where=where)
    canonical = cw.load_canonical(weights, key)
    if not W.is_generator(canonical.arch):
        raise UserError(f"--load {weights}: holds {canonical.arch} weights, not an RRDBNet or SRVGGNetCompact "
                        "generator")
    state = W.to_framework(canonical, "paddle")
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problem = W.key_mismatch(own, {k: np.shape(v) for k, v in state.items()})
    if problem:
        hp = ", ".join(f"{k}={v}" for k, v in canonical.hparams.items())
        says = ", ".join(f"{k}={v}" for k, v in gen_cfg.items() if k != "name")
        raise UserError(f"--load {weights}: the weights are {canonical.arch}({hp}) and do not fit {where} ({says}): "
                        f"{problem}; fix {where} or pick other weights")
    return deploy.set_weights(model, state), canonical.hparams


def export(cfg, weights, inputs_size, output_dir=DEFAULT_OUTPUT_DIR, key=None):
    """Export every net of ``cfg.export_model`` -> list of written file paths."""
    exports = cfg.get("export_model") or DEFAULT_EXPORTS
    model_cfg = cfg.get("model") or {}
    wanted = 0
    for i, net in enumerate(exports):
        if not isinstance(net, dict) or "name" not in net:
            raise ConfigError(f"export_model[{i}]: expected {{name: generator, inputs_num: 1}}, got {net!r}")
        if net["name"] != "generator":
            raise ConfigError(f"export_model[{i}]: only the generator can be exported, not {net['name']!r}")
        wanted += int(net.get("inputs_num", 1))
    if len(inputs_size) != wanted:
        raise UserError(f"-s: export_model lists {wanted} input(s) but -s gives {len(inputs_size)} shape(s); "
                        "separate shapes with ';'")
    written, used = [], 0
    for net in exports:
        model, hparams = load_generator(model_cfg.get(net["name"]), weights, key, f"model.{net['name']}")
        prefix = os.path.join(output_dir, f"{str(model_cfg.get('name', 'model')).lower()}_{net['name']}")
        written += save_inference_model(model, hparams, prefix, inputs_size[used])
        used += int(net.get("inputs_num", 1))
    return written


# ------------------------------------------------------------------------------- on-the-fly export for infer.py
def canonical_digest(canonical):
    """A hash of a Canonical's hparams and weights (+ the paddle version): the key of the export cache."""
    paddle = cw._import("paddle")
    h = hashlib.sha256(f"{paddle.__version__}|{sorted(canonical.hparams.items())}".encode())
    for name in sorted(canonical.state):
        value = np.ascontiguousarray(canonical.state[name])
        h.update(f"{name}|{value.dtype}|{value.shape}".encode())
        h.update(value.tobytes())
    return h.hexdigest()[:20]


def default_cache_dir():
    return cache_dir("paddle_inference")


def cached_inference_model(canonical, cache_dir=None):
    """The folder of a dynamic-shape inference model of ``canonical``, exported once into ``cache_dir``."""
    root = cache_dir or default_cache_dir()
    folder = os.path.join(root, canonical_digest(canonical))
    if is_complete(os.path.join(folder, "model")):
        return folder
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=root)
    try:
        save_inference_model(cw.build_model(canonical, "paddle"), canonical.hparams, os.path.join(tmp, "model"))
        try:
            os.replace(tmp, folder)
        except OSError:  # another process exported the same model meanwhile
            if not is_complete(os.path.join(folder, "model")):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


# ------------------------------------------------------------------------------------------------------- CLI
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("-c", "--config-file", metavar="FILE", required=True, help="config file path")
    p.add_argument("--load", required=True, help="generator weights (.pdparams, .pth, ncnn .param, pretrained name)")
    p.add_argument("-o", "--opt", nargs="+", default=[], metavar="KEY=VALUE", help="override config keys")
    p.add_argument(*SHAPE_FLAGS, dest="inputs_size", required=True,
                   help="input shape N,C,H,W, -1 for dynamic (e.g. 1,3,128,128 or -1,3,-1,-1); ';' between inputs")
    p.add_argument("--output_dir", "--output-dir", default=DEFAULT_OUTPUT_DIR,
                   help=f"folder of the inference model (default: {DEFAULT_OUTPUT_DIR})")
    p.add_argument("--key", help="top-level key holding the weights (default: params_ema, params, generator, ...)")
    return p.parse_args(_glue_shape_values(sys.argv[1:] if argv is None else list(argv)))


def _glue_shape_values(argv):
    """``-s -1,3,-1,-1`` -> ``-s=-1,3,-1,-1``: argparse would take a value starting with '-' for an option."""
    out = []
    for arg in argv:
        if out and out[-1] in SHAPE_FLAGS and arg.startswith("-") and arg[1:2].isdigit():
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(resolve_config(args.config_file), args.opt, check_paths=False)
    if not os.path.exists(args.load) and not cw.is_ncnn_source(args.load):
        raise UserError(f"--load: file not found: {args.load}")
    shapes = parse_inputs_size(args.inputs_size)
    cw._import("paddle")
    with run_config_hint(args.load, args.config_file), stage(f"exporting {args.load} to {args.output_dir}"):
        written = export(cfg, args.load, shapes, args.output_dir, args.key)
    print(f"{args.load} -> {', '.join(written)} (input {';'.join(','.join(map(str, s)) for s in shapes)})")
    return 0

