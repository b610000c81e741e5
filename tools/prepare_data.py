"""Prepare training data: multi-scale copies, sub-images, meta-info lists, bicubic LQ.

The command is ``esrgan_twin.commands.prepare`` (also installed as ``esrgan-twin prepare``); ``-h`` lists its flags.
"""
import sys

from esrgan_twin.command_errors import run_command
from esrgan_twin.commands.prepare import main

if __name__ == "__main__":
    sys.exit(run_command(main))
