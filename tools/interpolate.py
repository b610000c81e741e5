"""Blend two models' weights, ESRGAN's network interpolation (net_interp.py): OUT = (1 - alpha) * A + alpha * B.

    python tools/interpolate.py RRDB_PSNR_x4.pth RRDB_ESRGAN_x4.pth --alpha 0.8 -o interp_08.pth
    python tools/interpolate.py psnr.pdparams gan.pth --alpha 0.3 -o blend.pdparams
    python tools/interpolate.py psnr.safetensors gan.safetensors --alpha 0.5 -o blend.safetensors

The command is ``esrgan_twin.commands.interpolate`` (also installed as ``esrgan-twin interpolate``); ``-h`` lists its flags.
"""
import sys

from esrgan_twin.command_errors import run_command
from esrgan_twin.commands.interpolate import main

if __name__ == "__main__":
    sys.exit(run_command(main))
