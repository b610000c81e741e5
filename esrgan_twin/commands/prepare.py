"""Prepare training data: multi-scale copies, sub-images, meta-info lists, bicubic LQ.

    python tools/prepare_data.py multiscale --input datasets/DF2K/DF2K_HR --output datasets/DF2K/DF2K_multiscale
    python tools/prepare_data.py subimages --input DF2K_multiscale --output DF2K_multiscale_sub --crop-size 400
    python tools/prepare_data.py meta_info --input datasets/DF2K/DF2K_HR_sub --meta-info datasets/DF2K/meta_info.txt
    python tools/prepare_data.py lq --input my_hr --output data/animeSR --scale 4   # -> train/ and train_X4/
"""
import argparse
import os


from common_data.data import prepare
from common_data.errors import UserError
from esrgan_twin.command_errors import run_command


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def with_workers(p):
        p.add_argument("--workers", type=int, default=1, help="processes (multiprocessing.Pool); 1 = no pool")
        return p

    p = with_workers(sub.add_parser("multiscale", help="Real-ESRGAN multi-scale copies {stem}T0..T3.png (PIL LANCZOS)"))
    p.add_argument("--input", required=True, help="folder of HR images")
    p.add_argument("--output", required=True, help="folder for the copies")
    p.add_argument("--factors", type=float, nargs="+", default=list(prepare.MULTISCALE_FACTORS))
    p.add_argument("--shortest-edge", type=int, default=prepare.SHORTEST_EDGE,
                   help="the last copy's shortest side (default 400)")

    p = with_workers(sub.add_parser("subimages", help="BasicSR sliding-window crops {stem}_s001{ext} ..."))
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--crop-size", type=int, default=480)
    p.add_argument("--step", type=int, default=240)
    p.add_argument("--thresh-size", type=int, default=0,
                   help="add a last window flush with the edge when more than this is left uncovered")
    p.add_argument("--compression-level", type=int, default=3, help="PNG compression 0..9 (OpenCV's default 3)")
    p.add_argument("--strip-scale-suffix", action="store_true",
                   help="drop a trailing x2/x3/x4/x8 from names (DIV2K LR: 0001x4.png -> 0001_s001.png)")

    p = sub.add_parser("meta_info", aliases=["meta-info"], help="list images (recursive) relative to roots")
    p.add_argument("--input", required=True, nargs="+", help="one or more folders")
    p.add_argument("--root", nargs="+", default=None,
                   help="one root for all folders or one per folder (default: each folder's parent)")
    p.add_argument("--meta-info", required=True, help="the text file to write")
    p.add_argument("--check", action="store_true", help="decode every image first")

    p = with_workers(sub.add_parser("lq", help="mod-crop GT and make its MATLAB-bicubic LQ (animeSR layout)"))
    p.add_argument("--input", required=True, help="folder of HR images")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--output", help="dataset folder: GT to OUTPUT/train, LQ to OUTPUT/train_X{scale}")
    p.add_argument("--gt-out", help="folder for the cropped GT (overrides --output)")
    p.add_argument("--lq-out", help="folder for the LQ images (overrides --output)")
    p.add_argument("--force", action="store_true",
                   help="write into non-empty output folders (same-named files are overwritten)")
    p.add_argument("--degradation", metavar="PRESET", default=None,
                   help="LQ by Real-ESRGAN's degradations instead of bicubic (realesrgan_default, anime_light, "
                        "jpeg_only, resize_only); with --scale 1, a same-size restoration pair (1x models)")
    p.add_argument("--seed", type=int, default=0, help="seed of --degradation's random draws (default 0)")
    return parser


def run(args):
    if args.command == "multiscale":
        written = prepare.multiscale(args.input, args.output, args.workers, args.factors, args.shortest_edge)
        print(f"wrote {len(written)} images to {args.output}")
        report(written, len(prepare.input_images(args.input)),
               upscaled_why=f"whose shortest side is below {args.shortest_edge} (or a factor above 1)")
    elif args.command == "subimages":
        written = prepare.subimages(args.input, args.output, args.crop_size, args.step, args.thresh_size,
                                    args.compression_level, args.strip_scale_suffix, args.workers)
        print(f"wrote {len(written)} sub-images to {args.output}")
        report(written, len(prepare.input_images(args.input)),
               skipped_why=f"smaller than the {args.crop_size}x{args.crop_size} crop (nothing written for them)")
    elif args.command in ("meta_info", "meta-info"):
        lines = prepare.meta_info_lines(args.input, args.root, args.check)
        prepare.write_meta_info(args.meta_info, lines)
        print(f"wrote {len(lines)} paths to {args.meta_info}")
    elif args.command == "lq":
        if args.output is None and (args.gt_out is None or args.lq_out is None):
            raise UserError("lq needs --output, or both --gt-out and --lq-out")
        gt_out = args.gt_out or os.path.join(args.output, "train")
        lq_out = args.lq_out or os.path.join(args.output, f"train_X{args.scale}")
        pairs = prepare.generate_lq(args.input, gt_out, lq_out, args.scale, args.workers, args.force,
                                    args.degradation, args.seed)
        how = f"{args.degradation}-degraded" if args.degradation else "bicubic"
        print(f"wrote {len(pairs)} GT images to {gt_out} and their x{args.scale} {how} LQ to {lq_out}")


def report(written, total, skipped_why="", upscaled_why=""):
    for line in prepare.summary_lines(written, total, skipped_why, upscaled_why):
        print(line)


def prepare_data(argv=None):
    """The command's work; raises UserError (``main`` turns it into one line and exit 2)."""
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except OSError as e:
        raise UserError(f"{e.filename or ''}: {e.strerror or e}; check the path and permissions") from None
    return 0


def main(argv=None):
    """``prepare_data`` under the commands' error policy -> exit code."""
    return run_command(prepare_data, argv)
