"""Cross-check the four ways of running a model, and the two ways of training one.

    python tools/parity.py -n WEIGHTS -i IMAGE_FOLDER [--gt GT_FOLDER] [--tolerance 1e-4]
    python tools/parity.py -n realesrgan-x4plus-anime -i inputs --engines torch paddle
    python tools/parity.py --train -c CONFIG [--iters 20] [-o KEY=VALUE ...] [--rtol 1e-4]

Inference: WEIGHTS (anything tools/convert_weights.py reads: .pth, .pdparams, ncnn .param, a pretrained name) is
run by PyTorch, Paddle, onnxruntime on the graph exported from PyTorch, onnxruntime on the graph exported from
Paddle (paddle2onnx) and the ncnn runtime on our ncnn export (convert_weights.py --to ncnn, fp32 weights). A Markdown table gives max |diff| of the float outputs for every pair of engines and PSNR /
SSIM between them (uint8 outputs, common_data.metrics.quality); with --gt, PSNR / SSIM of each engine against the GT image
of the same name. Engines whose package is missing are skipped with a note naming it.

Training: each backend's own trainer (the training core with its adapter, as tools/main.py runs it) trains the
config for --iters iterations in fp32, both from the initial weights PyTorch draws with the seed (converted for
Paddle: ``pretrain_network_g`` / ``_d``) and with the same seed, so both loaders read the same batches
(common_data.data.sampling). The losses of every iteration are printed side by side; the trainers' logs go to
stderr.

Exit status: 0 when everything agrees, 1 with one line naming the pair (or iteration and loss) past the
tolerance, 2 for a usage error.
"""
import argparse
import contextlib
import copy
import itertools
import os
import sys
import tempfile


import numpy as np

from esrgan_twin.commands import convert as cw
from common_data.weights import naming as W
from common_data.config.loading import check_data_paths, load_config
from common_data.errors import DataError, UserError
from common_data.data.imageio import list_images, read_image, read_uint8
from common_data.metrics.quality import calculate_psnr, calculate_ssim
from common_data.inference.tiling import tiled_forward
from common_data.training.host_rng import seed_host
from common_data.data.visual import chw_to_uint8

ENGINES = ("torch", "paddle", "onnx-torch", "onnx-paddle", "ncnn")
# python modules each engine needs, and the pip package of each module
ENGINE_MODULES = {"torch": ("torch",), "paddle": ("paddle",), "onnx-torch": ("torch", "onnxruntime"),
                  "onnx-paddle": ("paddle", "paddle2onnx", "onnxruntime"), "ncnn": ("ncnn",)}
PIP_NAMES = {"torch": "torch", "paddle": "paddlepaddle", "onnxruntime": "onnxruntime", "paddle2onnx": "paddle2onnx",
             "ncnn": "ncnn"}
# the framework whose weights an engine runs (ncnn: the torch-convention canonical, exported by us)
FRAMEWORK_OF_ENGINE = {"torch": "torch", "paddle": "paddle", "onnx-torch": "torch", "onnx-paddle": "paddle",
                       "ncnn": "torch"}




def available_engines(wanted=ENGINES):
    """-> (engines whose packages are installed, notes naming the package to install for the others)."""
    usable, notes = [], []
    for engine in wanted:
        missing = [m for m in ENGINE_MODULES[engine] if not cw.installed(m)]
        if missing:
            notes.append(f"{engine} skipped: pip install {' '.join(PIP_NAMES[m] for m in missing)}")
        else:
            usable.append(engine)
    return usable, notes


# ------------------------------------------------------------------------------------------------ inference
def make_forward(engine, canonical, workdir):
    """np NCHW float32 -> np NCHW for one engine; ONNX engines export ``canonical`` to ``workdir`` first."""
    if engine == "ncnn":
        return ncnn_forward(canonical, workdir)
    from esrgan_twin.commands import export_onnx
    framework = FRAMEWORK_OF_ENGINE[engine]
    model = cw.build_model(canonical, framework)
    if engine in ("torch", "paddle"):
        return cw.forward_fn(model, framework)
    path = os.path.join(workdir, f"{engine}.onnx")
    exporter = export_onnx.export_torch if framework == "torch" else export_onnx.export_paddle
    with stdout_to_stderr():  # paddle2onnx's progress lines would break the Markdown on stdout
        exporter(model, canonical.hparams, path)
    return export_onnx.onnx_forward(path)


def ncnn_forward(canonical, workdir):
    """The ncnn runtime (CPU) on our ncnn export of ``canonical``: fp32 weights and fp32 arithmetic, so the column
    checks the graph to float precision (shipped files use fp16 weights: within 2 levels, tests/test_ncnn_export)."""
    import ncnn as ncnn_runtime
    from common_data.weights import ncnn_export as ncnn_export
    param, binary = ncnn_export.export(canonical, os.path.join(workdir, "model"), fp16=False)
    net = ncnn_runtime.Net()
    net.opt.use_vulkan_compute = False
    net.opt.use_fp16_storage = net.opt.use_fp16_arithmetic = net.opt.use_fp16_packed = False
    if net.load_param(param) or net.load_model(binary):
        raise UserError(f"{param}: the ncnn runtime cannot load our export")

    def forward(x):
        outs = []
        for item in x:
            ex = net.create_extractor()
            ex.input(ncnn_export.INPUT_BLOB, ncnn_runtime.Mat(np.ascontiguousarray(item, np.float32)))
            ret, out = ex.extract(ncnn_export.OUTPUT_BLOB)
            if ret:
                raise UserError(f"{param}: the ncnn runtime failed (code {ret})")
            outs.append(np.array(out))
        return np.stack(outs)
    return forward


@contextlib.contextmanager
def stdout_to_stderr():
    """Send what is written to file descriptor 1 (Python and C++ alike) to stderr for the duration."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


class InferenceReport:
    """What ``inference_parity`` measured: ``max_diff`` / ``pair_psnr`` / ``pair_ssim`` keyed by engine pairs,
    ``gt_psnr`` / ``gt_ssim`` keyed by engine (means over the images), ``notes`` on skipped engines."""

    def __init__(self, engines, notes, num_images):
        self.engines, self.notes, self.num_images = list(engines), list(notes), num_images
        self.pairs = list(itertools.combinations(self.engines, 2))
        self.max_diff = {p: 0.0 for p in self.pairs}
        self.pair_psnr, self.pair_ssim = {p: [] for p in self.pairs}, {p: [] for p in self.pairs}
        self.gt_psnr, self.gt_ssim = {e: [] for e in self.engines}, {e: [] for e in self.engines}

    def markdown(self):
        lines = [f"{self.num_images} image(s); max |diff| of the float outputs, PSNR / SSIM of the uint8 outputs", "",
                 "| pair | max abs diff | PSNR (dB) | SSIM |", "| --- | ---: | ---: | ---: |"]
        for a, b in self.pairs:
            lines.append(f"| {a} vs {b} | {self.max_diff[(a, b)]:.3g} | {_fmt_psnr(self.pair_psnr[(a, b)])} "
                         f"| {np.mean(self.pair_ssim[(a, b)]):.6f} |")
        if any(self.gt_psnr.values()):
            lines += ["", "| engine | PSNR vs GT (dB) | SSIM vs GT |", "| --- | ---: | ---: |"]
            lines += [f"| {e} | {_fmt_psnr(self.gt_psnr[e])} | {np.mean(self.gt_ssim[e]):.6f} |" for e in self.engines]
        return "\n".join(lines)

    def add_diff(self, pair, diff):
        """Keep the largest max |diff| of ``pair`` over the images; NaN sticks (a NaN output never agrees)."""
        if np.isnan(diff) or diff > self.max_diff[pair]:
            self.max_diff[pair] = diff

    def worst_pairs(self, tolerance):
        """Pairs past ``tolerance``, worst first."""
        bad = [p for p in self.pairs if not self.max_diff[p] <= tolerance]
        return sorted(bad, key=lambda p: -self.max_diff[p] if np.isfinite(self.max_diff[p]) else -np.inf)


def _fmt_psnr(values):
    value = float(np.mean(values))
    return "inf" if np.isinf(value) else f"{value:.3f}"


def inference_parity(canonicals, images, gts=None, engines=ENGINES, crop_border=None, test_y_channel=False,
                     tile=0, tile_pad=10):
    """Run every installed engine on ``images`` (HxWx3 float32 RGB in [0, 1]) -> InferenceReport.

    ``canonicals``: one Canonical for all engines, or ``{'torch': c, 'paddle': c}`` (the ONNX engines export the
    model of their framework). ``gts``: uint8 HxWx3 RGB images (or None) for PSNR / SSIM against the truth,
    ``crop_border`` pixels per edge left out (default: the scale).
    """
    if isinstance(canonicals, W.Canonical):
        canonicals = {"torch": canonicals, "paddle": canonicals}
    first = next(iter(canonicals.values()))
    if not W.is_generator(first.arch):
        raise UserError(f"parity runs generators (RRDBNet, SRVGGNetCompact); these weights are {first.arch}")
    hp = first.hparams
    if W.in_channels(hp) != 3:
        raise UserError(f"parity compares RGB models (3 input channels); this {first.arch} has "
                        f"{W.in_channels(hp)}")
    usable, notes = available_engines(engines)
    if len(usable) < 2:
        raise UserError(f"parity needs two engines, {len(usable)} usable ({'; '.join(notes) or 'choose more'})")
    scale, multiple = W.net_scale(hp), W.unshuffle_multiple(hp)
    crop = scale if crop_border is None else int(crop_border)
    report = InferenceReport(usable, notes, len(images))
    with tempfile.TemporaryDirectory(prefix="esrgan-parity-") as workdir:
        forwards = {e: make_forward(e, canonicals[FRAMEWORK_OF_ENGINE[e]], workdir) for e in usable}
        for index, img in enumerate(images):
            x = np.ascontiguousarray(img.transpose(2, 0, 1)[None], np.float32)
            outs = {e: tiled_forward(f, x, scale, tile, tile_pad, multiple)[0] for e, f in forwards.items()}
            uint8 = {e: chw_to_uint8(o) for e, o in outs.items()}
            for a, b in report.pairs:
                report.add_diff((a, b), cw.max_abs_diff(outs[a], outs[b]))
                report.pair_psnr[(a, b)].append(calculate_psnr(uint8[a], uint8[b], crop, test_y_channel=test_y_channel))
                report.pair_ssim[(a, b)].append(calculate_ssim(uint8[a], uint8[b], crop, test_y_channel=test_y_channel))
            gt = gts[index] if gts is not None else None
            if gt is not None:
                for e in usable:
                    report.gt_psnr[e].append(calculate_psnr(uint8[e], gt, crop, test_y_channel=test_y_channel))
                    report.gt_ssim[e].append(calculate_ssim(uint8[e], gt, crop, test_y_channel=test_y_channel))
    return report


def check_inference(report, tolerance):
    """CheckFailed (exit 1) naming the worst pair past ``tolerance``."""
    bad = report.worst_pairs(tolerance)
    if bad:
        a, b = bad[0]
        more = f" ({len(bad)} of {len(report.pairs)} pairs past it)" if len(bad) > 1 else ""
        raise cw.CheckFailed(f"{a} vs {b}: max |diff| {report.max_diff[(a, b)]:.3g} > --tolerance "
                             f"{tolerance:g}{more}")


def read_folder(folder, gt_folder=None):
    """-> (names, float RGB images, uint8 RGB GT images or None); GT files are matched by file stem."""
    paths = [folder] if os.path.isfile(folder) else list_images(folder)
    if not paths:
        raise DataError(f"{folder}: no image files in this folder")
    images = [read_image(p) for p in paths]
    gts = None
    if gt_folder:
        by_stem = {os.path.splitext(os.path.basename(p))[0]: p for p in list_images(gt_folder)}
        stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
        missing = [s for s in stems if s not in by_stem]
        if missing:
            raise DataError(f"--gt {gt_folder}: no GT image named like {', '.join(missing[:3])}"
                            f"{' ...' if len(missing) > 3 else ''} (GT files must have the input's name)")
        gts = [read_uint8(by_stem[s]) for s in stems]
    return [os.path.basename(p) for p in paths], images, gts


# ------------------------------------------------------------------------------------------------- training
def start_weights(cfg, seed, folder):
    """The nets of the config's model as PyTorch builds them with ``seed`` (after its own pretrain_network_g /
    _d, if any), saved for each backend -> {framework: {net name: path}}."""
    from torch_impl.engine.backend import TorchBackend
    from torch_impl.models import build_model
    seed_host(seed)
    TorchBackend().seed(seed)
    model = build_model(copy.deepcopy(cfg.model))
    paths = {"torch": {}, "paddle": {}}
    for name in model.nets:
        state = {k: v.detach().cpu().numpy() for k, v in model.net(name).state_dict().items()}
        canonical = W.canonicalize(W.float_state(state), "torch", source=f"torch {name}")
        for framework, ext in (("torch", ".pth"), ("paddle", ".pdparams")):
            paths[framework][name] = os.path.join(folder, f"start_{name}{ext}")
            cw.save_weights(canonical, framework, paths[framework][name])
    return paths


def parity_config(cfg, iters, seed, weights, output_dir):
    """``cfg`` for a comparison run: ``iters`` iterations from ``weights`` ({net: path}) with ``seed``, fp32, into
    ``output_dir``; no validation, VisualDL or training strips."""
    run = copy.deepcopy(cfg)
    run["total_iters"], run["seed"], run["precision"], run["output_dir"] = iters, seed, "fp32", output_dir
    run["enable_visualdl"] = False
    run.pop("epochs", None)
    run.pop("validate", None)
    (run.get("dataset") or {}).pop("test", None)
    log_cfg = dict(run.get("log_config") or {})
    log_cfg.pop("visiual_interval", None)
    log_cfg.pop("visual_interval", None)
    run["log_config"] = log_cfg
    run["debug"] = False
    for net, path in weights.items():
        suffix = net[0]  # generator -> _g, discriminator -> _d
        run["model"][f"pretrain_network_{suffix}"] = path
        run["model"][f"strict_load_{suffix}"] = True
        run["model"].pop(f"param_key_{suffix}", None)
    return run


def train_backend(cfg, framework):
    """Train ``cfg`` with ``framework``'s own Trainer (the training core and its adapter) -> its loss history; the
    trainer's log goes to stderr."""
    import importlib
    from common_data.training.options import Options
    trainer_class = importlib.import_module(f"{framework}_impl.engine.trainer").Trainer
    trainer = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            trainer = trainer_class(cfg, Options())
            return trainer.train()
    finally:
        if trainer is not None:
            trainer.close()
            trainer.backend.shutdown()


def training_parity(cfg, iters, seed=0, backend_cfgs=None):
    """Both backends' trainers train ``cfg`` (or ``backend_cfgs[framework]``) from the same initial weights with the
    same seed, so the same batches -> {'torch': [losses of iteration 1..iters], 'paddle': [...]}."""
    for module in ("torch", "paddle"):
        if not cw.installed(module):
            raise UserError(f"training parity needs both frameworks: pip install {PIP_NAMES[module]}")
    histories = {}
    with tempfile.TemporaryDirectory(prefix="esrgan-parity-") as folder:
        weights = start_weights(cfg, seed, folder)
        for framework in ("torch", "paddle"):
            own = (backend_cfgs or {}).get(framework, cfg)
            run = parity_config(own, iters, seed, weights[framework], os.path.join(folder, framework))
            histories[framework] = train_backend(run, framework)
    return histories


def relative_diff(a, b):
    scale = max(abs(a), abs(b))
    return abs(a - b) / scale if scale > 0 else 0.0


def losses_table(histories, names=("torch", "paddle")):
    a, b = (histories[n] for n in names)
    keys = list(a[0]) if a else []
    head = " | ".join(f"{n} {k}" for k in keys for n in names)
    lines = [f"| iter | {head} | max rel diff |", "| ---: |" + " ---: |" * (2 * len(keys) + 1)]
    for it, (la, lb) in enumerate(zip(a, b), start=1):
        cells = " | ".join(f"{side[k]:.7g}" if k in side else "-" for k in keys for side in (la, lb))
        worst = max((relative_diff(la[k], lb[k]) for k in keys if k in lb), default=0.0)
        lines.append(f"| {it} | {cells} | {worst:.2g} |")
    return "\n".join(lines)


def check_training(histories, rtol, names=("torch", "paddle"), atol=0.0):
    """CheckFailed (exit 1) at the first iteration with a loss ``|a - b| > rtol * max(|a|, |b|) + atol``."""
    a, b = (histories[n] for n in names)
    for it, (la, lb) in enumerate(zip(a, b), start=1):
        if list(la) != list(lb):
            raise cw.CheckFailed(f"iteration {it}: {names[0]} reports losses {', '.join(la)} but {names[1]} "
                                 f"{', '.join(lb)}")
        for key in la:
            diff = relative_diff(la[key], lb[key])
            if not abs(la[key] - lb[key]) <= rtol * max(abs(la[key]), abs(lb[key])) + atol:
                raise cw.CheckFailed(f"iteration {it}: {key} is {la[key]:.7g} on {names[0]} and {lb[key]:.7g} on "
                                     f"{names[1]}: relative diff {diff:.2g} > --rtol {rtol:g}")


# ------------------------------------------------------------------------------------------------------ CLI
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("-n", "--model", help="weights: .pth, .pdparams, ncnn .param or a pretrained name")
    p.add_argument("-i", "--input", help="an image or a folder of images")
    p.add_argument("--gt", help="folder of ground-truth images named like the inputs")
    p.add_argument("--tolerance", type=float, default=1e-4, help="max |diff| allowed between engines (default 1e-4)")
    p.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES),
                   help=f"engines to compare (default: all installed of {', '.join(ENGINES)})")
    p.add_argument("--key", help="top-level key holding the weights (default: params_ema, params, generator, ...)")
    p.add_argument("--crop-border", type=int, default=None, help="PSNR/SSIM border crop (default: the scale)")
    p.add_argument("--test-y-channel", action="store_true", help="PSNR/SSIM on the BT.601 Y channel")
    p.add_argument("-t", "--tile", type=int, default=0, help="tile size for large images, 0 = whole (default 0)")
    p.add_argument("--tile_pad", type=int, default=10, help="context pixels around each tile (default 10)")
    p.add_argument("--train", action="store_true", help="training parity instead of inference parity")
    p.add_argument("-c", "--config-file", help="--train: the config file")
    p.add_argument("-o", "--opt", nargs="+", default=[], metavar="KEY=VALUE", help="--train: config overrides")
    p.add_argument("--iters", type=int, default=20, help="--train: iterations to compare (default 20)")
    p.add_argument("--seed", type=int, default=None, help="--train: seed (default: the config's seed, else 0)")
    p.add_argument("--rtol", type=float, default=1e-4, help="--train: relative loss tolerance (default 1e-4)")
    p.add_argument("--atol", type=float, default=0.0,
                   help="--train: absolute slack for losses near 0, e.g. a discriminator's mean output (default 0)")
    return p.parse_args(argv)


def main_inference(args):
    if not args.model or not args.input:
        raise UserError("give the weights and the images: parity.py -n WEIGHTS -i IMAGE_FOLDER (or --train -c CFG)")
    canonical = cw.load_canonical(args.model, args.key)
    names, images, gts = read_folder(args.input, args.gt)
    report = inference_parity(canonical, images, gts, args.engines, args.crop_border, args.test_y_channel,
                              args.tile, args.tile_pad)
    print(f"{args.model}: {canonical.describe()}")
    for note in report.notes:
        print(f"note: {note}")
    print(report.markdown())
    check_inference(report, args.tolerance)
    print(f"all {len(report.pairs)} pairs within --tolerance {args.tolerance:g}")
    return 0


def main_training(args):
    if not args.config_file:
        raise UserError("--train needs a config: parity.py --train -c CONFIG [--iters 20]")
    if args.iters < 1:
        raise UserError(f"--iters {args.iters}: must be at least 1")
    from esrgan_twin.commands.train import set_thread_env
    cfg = load_config(args.config_file, args.opt, check_paths=False)
    check_data_paths(cfg, args.config_file, phases=("train",))
    set_thread_env(cfg)
    seed = args.seed if args.seed is not None else int(cfg.get("seed") or 0)
    histories = training_parity(cfg, args.iters, seed)
    print(f"{args.config_file}: {cfg.model.name}, {args.iters} iteration(s), seed {seed}, same initial weights "
          f"and batches")
    print(losses_table(histories))
    check_training(histories, args.rtol, atol=args.atol)
    print(f"losses agree to relative --rtol {args.rtol:g}{f' + --atol {args.atol:g}' if args.atol else ''}")
    return 0


def main(argv=None):
    args = parse_args(argv)
    return main_training(args) if args.train else main_inference(args)

