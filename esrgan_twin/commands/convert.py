"""Convert ESRGAN-family weights between PaddlePaddle and PyTorch, or import Real-ESRGAN's ncnn models.

    python tools/convert_weights.py --to paddle IN.pth OUT.pdparams
    python tools/convert_weights.py --to torch IN.pdparams OUT.pth
    python tools/convert_weights.py IN.pth OUT.safetensors
    python tools/convert_weights.py --from ncnn MODEL.param MODEL.bin OUT.pth
    python tools/convert_weights.py --from ncnn anime6b OUT.pdparams --verify
    python tools/convert_weights.py --to ncnn IN.pth models/realesrgan-custom-x4     (writes .param + .bin)

Reads RRDBNet in BasicSR, PaddleGAN/ESRGAN-2019 and ESRGAN-2018 naming, VGGDiscriminator128,
UNetDiscriminatorSN and torchvision VGG; hyper-parameters come from the shapes (common_data/weights/naming.py).
Writes PaddleGAN's layout ({'generator': ...}) for .pdparams, BasicSR's ({'params_ema': ...}) for .pth, and a flat
state dict in PyTorch conventions (BasicSR names unless --naming) for .safetensors. Files are read without running
code in them: the container (torch zip, Paddle pickle, safetensors) picks the one reader (common_data/weights/files.py).
This module also holds the framework adapters (read, build, run) that tools/export_onnx.py and tools/infer.py use.
"""
import argparse
import importlib
import importlib.util
import os


import numpy as np

from common_data.weights import ncnn_reader as ncnn
from common_data.weights import ncnn_export as ncnn_export
from common_data.weights import files as WF
from common_data.weights import naming as W
from esrgan_twin.stage import stage
from common_data.weights.checkpoints import atomic_write
from common_data.errors import UserError
from esrgan_twin.command_errors import CheckFailed

EXTENSIONS = {"paddle": (".pdparams",), "torch": (".pth", ".pt", ".ckpt")}
FRAMEWORK_NAMES = WF.FRAMEWORK_NAMES
SAFETENSORS = ".safetensors"
NCNN = "ncnn"


def installed(module):
    """Whether ``module`` can be imported (without importing it)."""
    return importlib.util.find_spec(module) is not None


def cuda_gpus():
    """How many CUDA GPUs torch sees (0 without torch or a GPU)."""
    if not installed("torch"):
        return 0
    import torch
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def cuda_bf16():
    """Whether torch's CUDA GPU runs bf16."""
    import torch
    return torch.cuda.is_bf16_supported()


# --------------------------------------------------------------------------------------------------- reading
def framework_of(path):
    """'paddle' / 'torch' from a file extension, else None."""
    low = str(path).lower()
    return next((fw for fw, exts in EXTENSIONS.items() if low.endswith(exts)), None)


def _import(framework):
    try:
        if framework == "paddle":
            import paddle
            return paddle
        import torch
        return torch
    except ImportError:
        pkg = "paddlepaddle" if framework == "paddle" else "torch"
        raise UserError(f"this needs {FRAMEWORK_NAMES[framework]}: pip install {pkg}") from None


def _to_numpy(obj):
    """Nested dicts/lists of torch tensors -> the same with numpy arrays."""
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(v) for v in obj)
    if hasattr(obj, "detach"):  # torch.Tensor
        t = obj.detach().cpu()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        return t.numpy()
    return obj


def is_safetensors(path):
    return str(path).lower().endswith(SAFETENSORS)


def output_framework(path):
    """Whose conventions an output file takes: 'torch' for .safetensors, else from the extension (or None)."""
    return "torch" if is_safetensors(path) else framework_of(path)


def format_name(path, framework):
    """How the written file is described: 'safetensors', 'Paddle' or 'PyTorch'."""
    return "safetensors" if is_safetensors(path) else FRAMEWORK_NAMES[framework]


def read_checkpoint(path):
    """Read weights without running code -> (nested dict of numpy arrays, framework whose conventions they follow).

    A torch.save file goes to torch.load(weights_only=True), a Paddle pickle to the restricted unpickler, a
    .safetensors (PyTorch conventions) to safetensors; a file named like the other framework's is read by the
    reader of what it is, never the one its name suggests, and only once that reader accepted it is the user told
    to rename it (a payload is refused as such, never called weights)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise UserError(f"weights file not found: {path}")
    kind = WF.file_kind(path)
    if kind is None:
        raise UserError(f"{path}: not a weights file (neither a .pth / .pdparams pickle nor .safetensors); "
                        f"re-download or re-save it")
    if kind == "safetensors":
        return WF.read_safetensors(path), "torch"
    if kind == "paddle":
        obj = WF.read_paddle(path)
    else:
        _import("torch")
        from torch_impl.engine.checkpoint import load_checkpoint
        obj = _to_numpy(load_checkpoint(path, "weights"))
    named = framework_of(path)
    if named not in (None, kind):
        raise UserError(f"{path} holds {FRAMEWORK_NAMES[kind]} weights but is named like a "
                        f"{FRAMEWORK_NAMES[named]} file; rename it to {EXTENSIONS[kind][0]}")
    return obj, kind


def is_ncnn_source(path_or_name):
    p = str(path_or_name)
    return p.lower().endswith(".param") or (not os.path.exists(p) and ncnn.resolve_pretrained(p) is not None)


def load_ncnn(param_or_name, bin_path=None):
    """An ncnn RRDBNet or SRVGGNetCompact (files or pretrained name) -> Canonical."""
    found = ncnn.resolve_pretrained(param_or_name) if not str(param_or_name).lower().endswith(".param") else None
    if found:
        param, binary = found
    else:
        param = os.fspath(param_or_name)
        binary = bin_path or os.path.splitext(param)[0] + ".bin"
        if not param.lower().endswith(".param"):
            raise UserError(f"{param}: not an ncnn .param file nor a known pretrained name "
                            f"({', '.join(ncnn.pretrained_names())})")
    state, fixed = ncnn.generator_state(param, binary)
    canon = W.canonicalize(state, "torch", param)
    canon.naming = "ncnn"
    canon.hparams.update(fixed)  # what the graph says (SRVGGNetCompact: act_type, the x2/x3 files' out_scale)
    if "act_type" in fixed:
        canon.notes = [n for n in canon.notes if n != W.COMPACT_ACT_NOTE]
    return canon


def load_canonical(path, key=None):
    """Any supported weights (.pth, .pdparams, ncnn .param or pretrained name) -> Canonical."""
    if is_ncnn_source(path):
        return load_ncnn(path)
    obj, framework = read_checkpoint(path)
    state, _ = W.unwrap_state_dict(obj, key, source=os.fspath(path))
    return W.canonicalize(W.float_state(state), framework, source=os.fspath(path))


# --------------------------------------------------------------------------------------------------- writing
def save_weights(canonical, framework, path, layout=None, naming=None):
    """Write ``canonical`` for ``framework``; ``layout`` = top-level key, 'flat', or None for the default.

    A .safetensors ``path`` gets a flat state dict in PyTorch conventions whatever ``framework`` (layout flat)."""
    if is_safetensors(path):
        if layout not in (None, "flat"):
            raise UserError(f"{path}: a .safetensors file holds one flat state dict; drop --layout {layout}")
        WF.write_safetensors(path, W.to_framework(canonical, "torch", naming))
        return None
    state = W.to_framework(canonical, framework, naming)
    wrapper = W.default_wrapper(canonical.arch, framework) if layout is None else (None if layout == "flat"
                                                                                 else layout)
    lib = _import(framework)
    if framework == "paddle":
        tensors = {k: lib.to_tensor(np.require(v, requirements="C")) for k, v in state.items()}
    else:
        tensors = {k: lib.from_numpy(np.require(v, requirements="C")) for k, v in state.items()}  # 0-d kept 0-d
    obj = {wrapper: tensors} if wrapper else tensors
    atomic_write(path, lambda tmp: lib.save(obj, tmp))
    return wrapper


# ---------------------------------------------------------------------------------------------- models and runs
def deploy(framework):
    """``paddle_impl.deploy`` / ``torch_impl.deploy`` (running and exporting built nets); a missing framework ->
    one UserError naming the pip package."""
    _import(framework)
    return importlib.import_module(f"{framework}_impl.deploy")


def build_model(canonical, framework):
    """Our arch for ``canonical`` in ``framework``, weights loaded, in eval mode."""
    cfg = W.arch_config(canonical)
    if cfg is None:
        raise UserError(f"{canonical.arch} weights have no model to build here (they feed the perceptual loss)")
    backend = deploy(framework)
    model = importlib.import_module(f"{framework}_impl.archs").build_arch(cfg, where=canonical.describe())
    state = W.to_framework(canonical, framework)
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    problem = W.key_mismatch(own, {k: np.shape(v) for k, v in state.items()})
    if problem:
        raise UserError(f"weights do not fit {framework} {cfg['name']}: {problem}")
    return backend.set_weights(model, state)


def forward_fn(model, framework, precision="fp32", device="cpu"):
    """np NCHW float32 -> np float32, no gradients (torch: autocast in ``precision`` bf16 / fp16, on ``device``)."""
    return deploy(framework).forward_fn(model, precision, device)


def sample_input(canonical, size=32, seed=0):
    """A random input the arch accepts: NCHW float32 in [0, 1]."""
    hp = canonical.hparams
    if canonical.arch == W.VGG_DISCRIMINATOR:
        shape = (1, hp["in_channels"], hp["input_size"], hp["input_size"])
    elif canonical.arch == W.UNET_DISCRIMINATOR:
        shape = (1, hp["num_in_ch"], size, size)
    else:
        shape = (1, W.in_channels(hp), size, size)
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def max_abs_diff(a, b):
    if a.shape != b.shape:
        raise CheckFailed(f"outputs differ in shape: {a.shape} vs {b.shape}")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def verify_frameworks(canonical, tol, size=32):
    """Run the Paddle and PyTorch models on one random input; -> max |diff| (CheckFailed past ``tol``)."""
    x = sample_input(canonical, size)
    out = {fw: forward_fn(build_model(canonical, fw), fw)(x) for fw in ("paddle", "torch")}
    diff = max_abs_diff(out["paddle"], out["torch"])
    print(f"verify: max |paddle - torch| = {diff:.3g} on a {'x'.join(map(str, x.shape))} random input")
    if not diff <= tol:
        raise CheckFailed(f"paddle and torch outputs differ by {diff:.3g} > --tol {tol:g}")
    return diff


# ---------------------------------------------------------------------------------------------------- ncnn export
def ncnn_prefix(out):
    """OUT of ``--to ncnn`` -> the prefix of OUT.param / OUT.bin (a trailing .param or .bin is dropped)."""
    root, ext = os.path.splitext(os.fspath(out))
    return root if ext.lower() in (".param", ".bin") else os.fspath(out)


def export_ncnn(args, inputs, out):
    """``--to ncnn IN OUT``: a generator's weights -> OUT.param + OUT.bin (common_data/weights/ncnn_export.py)."""
    for flag, value in (("--layout", args.layout), ("--naming", args.naming), ("--verify", args.verify)):
        if value:
            raise UserError(f"{flag} does not apply to --to ncnn; drop it")
    if len(inputs) != 1:
        raise UserError(f"--to ncnn takes IN OUT_PREFIX, got {len(args.paths)} paths")
    canonical = load_canonical(inputs[0], args.key)
    if not W.is_generator(canonical.arch):
        raise UserError(f"{inputs[0]}: holds a {canonical.arch}, not a generator; only RRDBNet / SRVGGNetCompact "
                        "weights export to ncnn (pass the generator's .pth / .pdparams)")
    prefix = ncnn_prefix(out)
    if os.path.abspath(inputs[0]) in (os.path.abspath(prefix + ".param"), os.path.abspath(prefix + ".bin")):
        raise UserError(f"{out}: the output would overwrite the input; choose another name")
    param_path, bin_path = ncnn_export.export(canonical, prefix, fp16=not args.fp32)
    scale = W.net_scale(canonical.hparams)
    print(f"{inputs[0]}: {canonical.describe()} -> {param_path} + {bin_path} "
          f"(ncnn, {'float32' if args.fp32 else 'float16'} weights, x{scale}; realesrgan-ncnn-vulkan: "
          f"-n {os.path.basename(prefix)} -s {scale})")
    return 0


# ---------------------------------------------------------------------------------------------------------- CLI
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="IN OUT (OUT .pdparams, .pth or .safetensors); with --from ncnn: MODEL.param [MODEL.bin] OUT, or NAME OUT "
                        f"(NAME one of {', '.join(ncnn.pretrained_names())})")
    p.add_argument("--to", choices=W.FRAMEWORKS + (NCNN,),
                   help="target framework (default: from OUT's extension); ncnn: OUT is a prefix, OUT.param and "
                        "OUT.bin are written for realesrgan-ncnn-vulkan / Upscayl (generators only)")
    p.add_argument("--from", dest="source", choices=("auto", "ncnn"), default="auto",
                   help="input kind (default: from IN's extension)")
    p.add_argument("--key", help="top-level key holding the weights (default: params_ema, params, generator, ...)")
    p.add_argument("--layout", help="top-level key to save under, or 'flat' (default: generator/discriminator for "
                                    ".pdparams, params_ema/params for .pth)")
    p.add_argument("--naming", choices=W.GENERATOR_NAMINGS,
                   help="RRDBNet key names to write (default: ppgan for paddle, basicsr for torch)")
    p.add_argument("--fp32", action="store_true", help="--to ncnn: float32 weights (default float16, half the size, "
                                                       "as Real-ESRGAN's own ncnn files)")
    p.add_argument("--verify", action="store_true", help="run both frameworks on one random input, print max |diff|")
    p.add_argument("--tol", type=float, default=1e-4, help="--verify tolerance (default 1e-4)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if len(args.paths) < 2:
        raise UserError("give an input and an output: convert_weights.py --to paddle IN.pth OUT.pdparams")
    *inputs, out = args.paths
    if args.to == NCNN:
        return export_ncnn(args, inputs, out)
    if args.fp32:
        raise UserError("--fp32 is for --to ncnn; .pth / .pdparams / .safetensors keep float32 already")
    target = args.to or output_framework(out)
    if target is None:
        raise UserError(f"{out}: cannot tell the target framework; end it in .pdparams, .pth or .safetensors, "
                        f"or pass --to")
    if is_safetensors(out) and target != "torch":
        raise UserError(f"{out}: a .safetensors file is written in PyTorch conventions; drop --to {target}")
    if output_framework(out) != target:
        raise UserError(f"{out}: a {FRAMEWORK_NAMES[target]} file must end in {EXTENSIONS[target][0]}")
    if args.source == "ncnn" or is_ncnn_source(inputs[0]):
        if len(inputs) > 2:
            raise UserError("--from ncnn takes MODEL.param [MODEL.bin] OUT")
        canonical = load_ncnn(inputs[0], inputs[1] if len(inputs) == 2 else None)
    else:
        if len(inputs) != 1:
            raise UserError(f"expected one input and one output, got {len(args.paths)} paths")
        canonical = load_canonical(inputs[0], args.key)
    if os.path.abspath(inputs[0]) == os.path.abspath(out):
        raise UserError(f"{out}: the output would overwrite the input; choose another name")
    wrapper = save_weights(canonical, target, out, args.layout, args.naming)
    where = f"under {wrapper!r}" if wrapper else "flat"
    print(f"{inputs[0]}: {canonical.describe()} -> {out} ({format_name(out, target)}, {where})")
    lost = canonical.hparams.get("out_scale")
    if lost and lost != canonical.hparams.get("upscale"):
        print(f"note: {inputs[0]} is an x{canonical.hparams['upscale']} net followed by a bicubic resize to "
              f"x{lost}; a weights file holds only the x{canonical.hparams['upscale']} net (as Real-ESRGAN's .pth "
              f"files do), so {out} upscales x{canonical.hparams['upscale']}: infer.py -s {lost} resizes it (Lanczos), "
              f"-n {inputs[0]} reproduces ncnn's bicubic")
    if args.verify:
        with stage("verifying: paddle and torch on one random input"):
            verify_frameworks(canonical, args.tol)
    return 0

