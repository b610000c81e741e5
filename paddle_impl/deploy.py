"""Running and exporting a built generator outside training (inference, ONNX); the twin of torch_impl/deploy.py.

The multi-engine commands (esrgan_twin.commands) reach the framework only through this module.
"""
import copy
import os
import tempfile
import warnings

import numpy as np
import paddle
from paddle.nn import functional as F

from common_data.errors import UserError
from common_data.weights import naming as W
from common_data.weights.checkpoints import atomic_write


def set_weights(net, state):
    """Load a numpy state dict (names already in this framework's conventions) and switch to eval mode."""
    net.set_state_dict({k: paddle.to_tensor(np.ascontiguousarray(v)) for k, v in state.items()})
    net.eval()
    return net


def forward_fn(net, precision="fp32", device="cpu"):
    """np NCHW float32 -> np float32, no gradients, on Paddle's device in fp32 (the commands run other ``device``s
    and ``precision``s on torch)."""

    def run(x):
        with paddle.no_grad():
            return net(paddle.to_tensor(np.ascontiguousarray(x, np.float32))).numpy()
    return run


def unshuffle_free_copy(net):
    """A copy of an RRDBNet that takes already pixel-unshuffled input and does not crop (scale 4 behaviour)."""
    inner = copy.deepcopy(net)
    inner.unshuffle, inner.scale = 1, 4
    return inner


def export_module(net, hparams):
    """``net``, or for x2 / x1 RRDBNets a wrapper that pads and pixel-unshuffles with reshapes (paddle's
    pixel_unshuffle op cannot take unknown sizes)."""
    f = W.unshuffle_multiple(hparams)
    if f == 1:
        return net
    scale, channels = W.net_scale(hparams), W.in_channels(hparams)

    class AnySize(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.inner = unshuffle_free_copy(net)

        def forward(self, x):
            shape = paddle.shape(x)
            h, w = shape[2], shape[3]
            pad = paddle.stack([paddle.zeros_like(w), (f - w % f) % f, paddle.zeros_like(h), (f - h % f) % f])
            x = F.pad(x, pad.astype("int32"), mode="reflect")
            hp, wp = (h + (f - h % f) % f) // f, (w + (f - w % f) % f) // f
            x = x.reshape([shape[0], channels, hp, f, wp, f]).transpose([0, 1, 3, 5, 2, 4])
            out = self.inner(x.reshape([shape[0], channels * f * f, hp, wp]))
            return out[:, :, :h * scale, :w * scale]

    return AnySize()


def export_onnx(net, hparams, out_path, input_name, output_name, opset):
    """Write ``net`` as ONNX with dynamic batch, height and width (atomically), through paddle2onnx (which names
    the output itself: ``output_name`` is the torch twin's)."""
    try:
        import paddle2onnx
    except ImportError:
        raise UserError("ONNX export from Paddle needs paddle2onnx: pip install paddle2onnx==2.1.0") from None
    layer = export_module(net, hparams)
    layer.eval()
    spec = [paddle.static.InputSpec([None, W.in_channels(hparams), None, None], "float32", input_name)]
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "model")
        paddle.jit.save(layer, prefix, input_spec=spec)
        graph = prefix + (".json" if os.path.exists(prefix + ".json") else ".pdmodel")
        atomic_write(out_path, lambda dst: paddle2onnx.export(graph, prefix + ".pdiparams", dst,
                                                              opset_version=opset, verbose=False))


# ---- paddle only: Paddle Inference models
def save_inference_model(net, hparams, prefix, shape, input_name):
    """paddle.jit.save an eval-mode generator (x2 / x1 RRDBNets wrapped to take any size) for an N,C,H,W input
    ``shape`` with -1 for dynamic entries."""
    layer = export_module(net, hparams)
    layer.eval()
    spec = [paddle.static.InputSpec([None if v == -1 else int(v) for v in shape], "float32", input_name)]
    with warnings.catch_warnings():  # PIR's notes on tracing shape arithmetic
        warnings.simplefilter("ignore")
        paddle.jit.save(layer, prefix, input_spec=spec)
