"""Export a generator (RRDBNet, SRVGGNetCompact) to ONNX from PyTorch or Paddle, dynamic batch, height and width.

    python tools/export_onnx.py WEIGHTS.pth OUT.onnx [--backend torch] [--verify]
    python tools/export_onnx.py WEIGHTS.pdparams OUT.onnx --backend paddle --verify
    python tools/export_onnx.py anime6b OUT.onnx

The command is ``esrgan_twin.commands.export_onnx`` (also installed as ``esrgan-twin export-onnx``); ``-h`` lists its flags.
"""
import sys

from esrgan_twin.command_errors import run_command
from esrgan_twin.commands.export_onnx import main

if __name__ == "__main__":
    sys.exit(run_command(main))
