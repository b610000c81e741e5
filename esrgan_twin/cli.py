"""esrgan-twin: one command with the project's tools as subcommands (the same flags as ``tools/*.py``).

    esrgan-twin train -c esrgan_psnr_x4_anime          (a shipped config by name, or a YAML path)
    esrgan-twin infer -n realesrgan-x4plus-anime -i img.png -o out/
    esrgan-twin convert --to paddle net_g.pth net_g.pdparams
    esrgan-twin SUBCOMMAND -h                          (that subcommand's flags)
"""
import importlib
import sys
from typing import Optional, Sequence

from esrgan_twin.command_errors import EXIT_USER_ERROR, run_command

# subcommand -> (module of esrgan_twin with main(argv), one line for --help)
COMMANDS = {
    "train": ("train", "train, resume or evaluate a model from a config (PaddleGAN's tools/main.py)"),
    "infer": ("infer", "upscale images with a model file, a pretrained name or an exported model"),
    "convert": ("convert", "convert weights between Paddle, PyTorch, safetensors and ncnn"),
    "export-onnx": ("export_onnx", "export a generator to ONNX (dynamic batch and size), checked by onnxruntime"),
    "export-paddle": ("export_paddle", "export a generator as a Paddle inference model"),
    "parity": ("parity", "compare engines on images, or the two backends' training losses"),
    "interpolate": ("interpolate", "blend two models' weights (ESRGAN's net_interp)"),
    "prepare": ("prepare", "multi-scale copies, sub-images, meta-info lists, bicubic LQ"),
    "demo-data": ("demo_data", "write the synthetic anime-style demo set"),
    "configs": (None, "list the shipped configs"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {line}" for name, (_, line) in COMMANDS.items()]
    return (f"usage: esrgan-twin SUBCOMMAND [flags]\n\n{__doc__.splitlines()[0]}\n\nsubcommands:\n"
            + "\n".join(lines) + "\n\n'esrgan-twin SUBCOMMAND -h' lists that subcommand's flags.")


def list_configs() -> int:
    from esrgan_twin.shipped_configs import configs_dir, shipped_configs
    print(f"shipped configs (in {configs_dir()}):")
    for name in shipped_configs():
        print(f"  {name}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Dispatch ``argv`` (default ``sys.argv[1:]``) to a subcommand -> its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else EXIT_USER_ERROR
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown subcommand {name!r}; one of: {', '.join(COMMANDS)}", file=sys.stderr)
        return EXIT_USER_ERROR
    module_name = COMMANDS[name][0]
    if module_name is None:
        return list_configs()
    module = importlib.import_module(f"esrgan_twin.commands.{module_name}")
    program, sys.argv[0] = sys.argv[0], f"esrgan-twin {name}"  # argparse's usage line names the subcommand
    try:
        return run_command(module.main, rest)
    finally:
        sys.argv[0] = program


def entry_point() -> None:
    """The console script ``esrgan-twin``."""
    sys.exit(main())
