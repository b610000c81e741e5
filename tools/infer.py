"""Upscale images with an RRDBNet or SRVGGNetCompact, the way Real-ESRGAN's inference_realesrgan.py does.

    python tools/infer.py -i inputs -o results -n realesrgan-x4plus-anime
    python tools/infer.py -i photo.png -n net_g.pth -s 2 --tile 256 --backend torch
    python tools/infer.py -i folder -n model.onnx --suffix x4 --ext png

The command is ``esrgan_twin.commands.infer`` (also installed as ``esrgan-twin infer``); ``-h`` lists its flags.
"""
import sys

from esrgan_twin.command_errors import run_command
from esrgan_twin.commands.infer import main

if __name__ == "__main__":
    sys.exit(run_command(main))
