"""Convert ESRGAN-family weights between PaddlePaddle and PyTorch, or import Real-ESRGAN's ncnn models.

    python tools/convert_weights.py --to paddle IN.pth OUT.pdparams
    python tools/convert_weights.py --to torch IN.pdparams OUT.pth
    python tools/convert_weights.py IN.pth OUT.safetensors
    python tools/convert_weights.py --from ncnn MODEL.param MODEL.bin OUT.pth
    python tools/convert_weights.py --from ncnn anime6b OUT.pdparams --verify
    python tools/convert_weights.py --to ncnn IN.pth models/realesrgan-custom-x4     (writes .param + .bin)

The command is ``esrgan_twin.commands.convert`` (also installed as ``esrgan-twin convert``); ``-h`` lists its flags.
"""
import sys

from esrgan_twin.command_errors import run_command
from esrgan_twin.commands.convert import main

if __name__ == "__main__":
    sys.exit(run_command(main))
