"""Write the deterministic synthetic anime-style demo set (PaddleGAN animeSR layout).

    python tools/make_demo_data.py --output data/animeSR            # 16 train + 4 test, 192x192 GT, 48x48 LQ

A folder that already holds this very set (same arguments) is kept; another non-empty folder needs --force.
"""
import argparse
import os


from common_data.data.demo_data import MARKER_NAME, holds_demo_set, make_demo_data
from common_data.errors import UserError
from esrgan_twin.command_errors import run_command


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="dataset folder (train/, train_X4/, test/, test_X4/)")
    parser.add_argument("--num-train", type=int, default=16)
    parser.add_argument("--num-test", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=192, help="GT side in pixels, a multiple of 4")
    parser.add_argument("--force", action="store_true",
                        help="write into a non-empty --output (same-named files are overwritten)")
    return parser


def make(argv=None):
    """The command's work; raises UserError (``main`` turns it into one line and exit 2)."""
    args = build_parser().parse_args(argv)
    sizes = (args.num_train, args.num_test, args.seed, args.size)
    if not args.force and holds_demo_set(args.output, *sizes):
        print(f"{args.output} already holds this demo set: kept (--force writes it again)")
        return 0
    try:
        written = make_demo_data(args.output, *sizes, force=args.force)
    except OSError as e:
        raise UserError(f"cannot write under {args.output}: {e.strerror}; choose a writable --output") from None
    total = sum(len(v) for v in written.values())
    print(f"wrote {total} synthetic images to {args.output} (see {os.path.join(args.output, MARKER_NAME)})")
    return 0


def main(argv=None):
    """``make`` under the commands' error policy -> exit code."""
    return run_command(make, argv)
