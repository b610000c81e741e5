"""Cross-check the four ways of running a model, and the two ways of training one.

    python tools/parity.py -n WEIGHTS -i IMAGE_FOLDER [--gt GT_FOLDER] [--tolerance 1e-4]
    python tools/parity.py -n realesrgan-x4plus-anime -i inputs --engines torch paddle
    python tools/parity.py --train -c CONFIG [--iters 20] [-o KEY=VALUE ...] [--rtol 1e-4]

The command is ``esrgan_twin.commands.parity`` (also installed as ``esrgan-twin parity``); ``-h`` lists its flags.
"""
import sys

from esrgan_twin.command_errors import run_command
from esrgan_twin.commands.parity import main

if __name__ == "__main__":
    sys.exit(run_command(main))
