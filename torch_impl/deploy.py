"""Running and exporting a built generator outside training (inference, ONNX); the twin of paddle_impl/deploy.py.

The multi-engine commands (esrgan_twin.commands) reach the framework only through this module.
"""
import copy
import warnings

import numpy as np
import torch
from torch.nn import functional as F

from common_data.weights import naming as W
from common_data.weights.checkpoints import atomic_write

from .amp import inference_fn


def set_weights(net, state):
    """Load a numpy state dict (names already in this framework's conventions) and switch to eval mode."""
    net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    net.eval()
    return net


def forward_fn(net, precision="fp32", device="cpu"):
    """np NCHW float32 -> np float32, no gradients, on ``device`` ("cpu", "cuda:N") in autocast of ``precision``
    (torch_impl/amp.py)."""
    return inference_fn(net, precision, device)


def unshuffle_free_copy(net):
    """A copy of an RRDBNet that takes already pixel-unshuffled input and does not crop (scale 4 behaviour)."""
    inner = copy.deepcopy(net)
    inner.unshuffle, inner.scale = 1, 4
    return inner


def export_module(net, hparams):
    """``net``, or for x2 / x1 RRDBNets a wrapper that pads and pixel-unshuffles with traceable ops (any size)."""
    f = W.unshuffle_multiple(hparams)
    if f == 1:
        return net
    scale = W.net_scale(hparams)

    class AnySize(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = unshuffle_free_copy(net)

        def forward(self, x):
            h, w = x.shape[2], x.shape[3]
            x = F.pad(x, (0, (f - w % f) % f, 0, (f - h % f) % f), mode="reflect")
            out = self.inner(F.pixel_unshuffle(x, f))
            return out[:, :, :h * scale, :w * scale]

    return AnySize().eval()


def export_onnx(net, hparams, out_path, input_name, output_name, opset):
    """Write ``net`` as ONNX with dynamic batch, height and width (atomically)."""
    module = export_module(net, hparams)
    f = W.unshuffle_multiple(hparams)
    dummy = torch.rand(1, W.in_channels(hparams), 8 * f, 8 * f)
    axes = {0: "batch", 2: "height", 3: "width"}

    def write(tmp):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (dummy,), tmp, dynamo=False, input_names=[input_name],
                              output_names=[output_name], dynamic_axes={input_name: axes, output_name: axes},
                              opset_version=opset)
    atomic_write(out_path, write)
