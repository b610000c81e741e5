"""Train or evaluate an ESRGAN-family model with PaddleGAN's command line, on the Paddle or the PyTorch backend.

    python tools/main.py --demo                      # the demo config on the synthetic set (made when missing)
    python tools/main.py -c configs/esrgan_psnr_x4_anime.yaml
    python tools/main.py -c CONFIG --resume output_dir/<run>/iter_5000_checkpoint.pdparams
    python tools/main.py -c CONFIG --evaluate-only --load output_dir/<run>/iter_50000_weight.pdparams
    python tools/main.py -c CONFIG --backend torch -o total_iters=1000 lr_scheduler.periods=[1000]

The backend is ``--backend``, else the config's ``backend:`` key, else paddle. Mistakes in the config or the
options end as one ``error: ...`` line on stderr and exit code 2; Ctrl-C saves a checkpoint and exits 130.
"""
import argparse
import os

from common_data.config.loading import BACKENDS, check_data_paths, load_config
from common_data.config.precision import PRECISIONS
from common_data.data.demo_data import make_demo_data
from common_data.errors import UserError
from common_data.training.steps import AUTO, static_step_fits, to_static_choice
from esrgan_twin.command_errors import run_command
from esrgan_twin.shipped_configs import resolve_config
DEMO_CONFIG = "esrgan_psnr_x4_demo"
DEMO_DATA = os.path.join("data", "demo")  # its own folder: data/animeSR is the user guide's
RUNNERS = {"paddle": "paddle_impl.engine.run", "torch": "torch_impl.engine.run"}
INSTALL = {"paddle": "pip install paddlepaddle==3.2.2",
           "torch": "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu (or a CUDA build)"}
FRAMEWORK_MODULE = {"paddle": "paddle", "torch": "torch"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-c", "--config-file", metavar="FILE", default=None,
                        help="config file path, or the name of a shipped config (esrgan-twin configs lists them)")
    parser.add_argument("--demo", action="store_true",
                        help=f"train the demo ({DEMO_CONFIG}, unless -c names another config) on the synthetic "
                             f"demo set, writing it to {DEMO_DATA} first when it is missing")
    parser.add_argument("--resume", type=str, default=None, help="iter_N_checkpoint file to continue from")
    parser.add_argument("--load", type=str, default=None, help="iter_N_weight file (or a generator state dict)")
    parser.add_argument("--evaluate-only", action="store_true", help="validate the --load weights once and exit")
    parser.add_argument("-o", "--opt", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override config keys, e.g. -o total_iters=1000 dataset.train.batch_size=4 "
                             "(repeat -o as often as you like: every override applies)")
    parser.add_argument("--seed", type=int, default=None, help="seed python, numpy and the framework")
    parser.add_argument("--precision", choices=PRECISIONS, default=None,
                        help="auto (default: bf16 on CPUs with AMX / AVX512-BF16, fp16 on CUDA, else fp32), fp32, "
                             "bf16 or fp16 (the torch backend; paddle trains in fp32); overrides the config's")
    parser.add_argument("--amp", action="store_true",
                        help="mixed precision where the backend supports it (bf16 on CPU, fp16 on GPU)")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="paddle or torch (default: the config's backend: key, else paddle)")
    parser.add_argument("--debug", action="store_true",
                        help="a few iterations, log every step, validate and save early (run folder debug_*)")
    parser.add_argument("--auto_resume", "--auto-resume", dest="auto_resume", action="store_true",
                        help="continue from the newest iter_N_checkpoint of this config's newest run folder")
    return parser.parse_args(argv)


def ensure_demo_data(cfg):
    """Write the synthetic demo set to DEMO_DATA when the config's data folders are there and missing."""
    dataset = cfg.get("dataset") or {}
    folders = [block.get(key) for block in dataset.values() if isinstance(block, dict)
               for key in ("gt_folder", "lq_folder") if isinstance(block.get(key), str)]
    root = os.path.abspath(DEMO_DATA)
    if not folders or all(os.path.isdir(f) for f in folders):
        return
    if not all(os.path.abspath(f).startswith(root + os.sep) for f in folders):
        return  # the config reads other data: check_data_paths names what is missing
    written = make_demo_data(DEMO_DATA)
    print(f"demo data: {DEMO_DATA} was missing; wrote {sum(len(v) for v in written.values())} synthetic images "
          f"there (python tools/make_demo_data.py --output {DEMO_DATA} makes the same set)", flush=True)


def set_thread_env(cfg=None):
    """OMP threads = cores (max 4) and MKL_DEBUG_CPU_TYPE=5 (paddle's bundled MKL on AMD), unless the user set them.

    ``model.to_static`` trains through a static program whose fast CPU kernels are oneDNN's: that flag must be in
    the environment before paddle is imported.
    """
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, min(4, os.cpu_count() or 1))))
    os.environ.setdefault("MKL_DEBUG_CPU_TYPE", "5")
    choice = to_static_choice((cfg or {}).get("model"))
    if choice is True or (choice == AUTO and static_step_fits(cfg)[0]):
        os.environ.setdefault("FLAGS_use_mkldnn", "1")


def load_runner(backend):
    """Import the backend's ``run`` lazily; a missing framework -> UserError naming the pip package."""
    import importlib
    import importlib.util
    if importlib.util.find_spec(FRAMEWORK_MODULE[backend]) is None:
        raise UserError(f"the {backend} backend needs {FRAMEWORK_MODULE[backend]}: {INSTALL[backend]}")
    return importlib.import_module(RUNNERS[backend]).run


def train(argv=None):
    """The command's work; raises UserError / KeyboardInterrupt (``main`` turns them into exit codes)."""
    args = parse_args(argv)
    if args.seed is not None and args.seed < 0:
        raise UserError(f"--seed must be 0 or more, got {args.seed}")
    if not args.config_file and not args.demo:
        raise UserError("give a config: -c FILE or the name of a shipped config (esrgan-twin configs lists them), "
                        "or --demo")
    args.config_file = resolve_config(args.config_file or DEMO_CONFIG)
    cfg = load_config(args.config_file, args.opt, check_paths=False)
    if args.demo:
        ensure_demo_data(cfg)
    if args.resume and args.load:
        raise UserError("use either --resume (a checkpoint, continues training) or --load (weights), not both")
    if args.evaluate_only and not args.load:
        raise UserError("--evaluate-only needs the weights to evaluate: add --load PATH (an iter_N_weight file)")
    for flag in ("resume", "load"):
        path = getattr(args, flag)
        if path and not os.path.isfile(path):
            raise UserError(f"--{flag}: file not found: {path}")
    check_data_paths(cfg, args.config_file, phases=("test",) if args.evaluate_only else ("train", "test"))
    backend = args.backend or cfg.get("backend") or "paddle"
    set_thread_env(cfg)
    run = load_runner(backend)
    return run(cfg, args)


def main(argv=None):
    """``train`` under the commands' error policy -> exit code (0; 2 for bad input; 130 / 143 when stopped)."""
    return run_command(train, argv)
