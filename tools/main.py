"""Train or evaluate an ESRGAN-family model with PaddleGAN's command line, on the Paddle or the PyTorch backend.

    python tools/main.py -c configs/esrgan_psnr_x4_anime.yaml
    python tools/main.py -c CONFIG --resume output_dir/<run>/iter_5000_checkpoint.pdparams
    python tools/main.py -c CONFIG --evaluate-only --load output_dir/<run>/iter_50000_weight.pdparams
    python tools/main.py -c CONFIG --backend torch -o total_iters=1000 lr_scheduler.periods=[1000]

The command is ``esrgan_twin.commands.train`` (also installed as ``esrgan-twin train``); ``-h`` lists its flags.
"""
import sys

from esrgan_twin.command_errors import run_command
from esrgan_twin.commands.train import main

if __name__ == "__main__":
    sys.exit(run_command(main))
