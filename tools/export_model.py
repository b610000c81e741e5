"""Export a config's generator as a Paddle inference model (PaddleGAN's tools/export_model.py).

    python tools/export_model.py -c configs/esrgan_psnr_x4_anime.yaml --load iter_50000_weight.pdparams         -s 1,3,128,128
    python tools/export_model.py -c CONFIG --load net_g.pth -s -1,3,-1,-1 --output_dir inference_model

The command is ``esrgan_twin.commands.export_paddle`` (also installed as ``esrgan-twin export-paddle``); ``-h`` lists its flags.
"""
import sys

from esrgan_twin.command_errors import run_command
from esrgan_twin.commands.export_paddle import main

if __name__ == "__main__":
    sys.exit(run_command(main))
