"""Write the deterministic synthetic anime-style demo set (PaddleGAN animeSR layout).

    python tools/make_demo_data.py --output data/animeSR            # 16 train + 4 test, 192x192 GT, 48x48 LQ

The command is ``esrgan_twin.commands.demo_data`` (also installed as ``esrgan-twin demo-data``); ``-h`` lists its flags.
"""
import sys

from esrgan_twin.command_errors import run_command
from esrgan_twin.commands.demo_data import main

if __name__ == "__main__":
    sys.exit(run_command(main))
