"""Paddle only: RRDBNet's forward as the static oneDNN train step traces it (paddle_impl/engine/static_step.py).

``onednn_train_ops(net)`` switches the net's convs to ``conv_act`` with the fused bias + LeakyReLU op (and, for
bf16, the ops around each conv); ``check_onednn_train_channels`` refuses the widths oneDNN cannot train.
"""
import contextlib

import paddle
from paddle.nn import functional as F

from common_data.errors import ConfigError

from ..cpu_ops import bf16_ops, bias_act_op


@contextlib.contextmanager
def onednn_train_ops(net, enabled=True, bf16=False):
    """Build ``net``'s forward with ops whose oneDNN backward is fast (set by the static train step on the copy it
    traces); only ``net``'s RRDBNet layers change, other nets in the process keep their plain forward.

    Paddle 3.2.2's oneDNN backward of ``leaky_relu`` and of a broadcast bias add falls to oneDNN's reference
    kernels (``ref:any``: the conv writes NHWC, its backward blocked NCHW16c, and eltwise backward / the bias
    reduction have no fast kernel for mixed or blocked formats), which cost about half of a static training step.
    Inside this block each conv runs without its bias, and the bias and LeakyReLU follow as one fused C++ op
    (``paddle_impl.cpu_ops.bias_act``); when that op cannot be built, as ``expand_as`` + add and
    ``where(x >= 0, x, slope * x)`` on plain kernels. Both give the same values and gradients (also at x == 0) and
    keep every parameter and state-dict name. Eager training, inference and export never enter this block.

    With ``bf16`` (precision bf16; needs the compiled ops, ``cpu_ops.bf16_ops``) each conv's input and weight are
    rounded to bf16 (``to_bf16``) and ``bias_act_bf16`` follows: the convs' backward runs on oneDNN's bf16 kernels;
    their forward accumulates in float32, as Paddle 3.2 writes a float32 output there (see bias_act.cc). Weights,
    their gradients, the bias, LeakyReLU and the loss stay float32.
    """
    from .rrdbnet_arch import RRDBNet, ResidualDenseBlock  # imported here: rrdbnet_arch imports conv_act
    layers = [layer for layer in net.sublayers(include_self=True) if isinstance(layer, (RRDBNet, ResidualDenseBlock))]
    old = [layer.onednn_ops for layer in layers]
    mode = ("bf16" if bf16 else True) if enabled else False
    for layer in layers:
        layer.onednn_ops = mode
    try:
        yield
    finally:
        for layer, value in zip(layers, old):
            layer.onednn_ops = value


def conv_act(conv, x, lrelu=None, onednn_ops=False):
    """``conv(x)``, then ``lrelu`` when given; with ``onednn_ops`` (see ``onednn_train_ops``) as described there."""
    if not onednn_ops or conv.bias is None or conv._padding_mode != "zeros":
        y = conv(x)
        return y if lrelu is None else lrelu(y)
    slope = 1.0 if lrelu is None else lrelu._negative_slope
    fusable = slope > 0 and conv._data_format == "NCHW"  # what bias_act computes
    conv_args = (None, conv._stride, conv._padding, conv._dilation, conv._groups, conv._data_format)
    if onednn_ops == "bf16" and fusable:
        ops = bf16_ops()
        return ops.bias_act_bf16(F.conv2d(ops.to_bf16(x), ops.to_bf16(conv.weight), *conv_args), conv.bias, slope)
    y = F.conv2d(x, conv.weight, *conv_args)
    fused = bias_act_op() if fusable else None
    if fused is not None:
        return fused(y, conv.bias, slope)
    y = y + paddle.expand_as(conv.bias.reshape([1, -1, 1, 1]), y)
    return y if lrelu is None else paddle.where(y >= 0, y, y * slope)  # gradient 1 at 0, as paddle's leaky_relu


def onednn_channel_block():
    """Channels per block of oneDNN's CPU layout: 16 with AVX-512 (nChw16c), else 8 (nChw8c)."""
    return 16 if paddle.base.core.supports_avx512f() else 8


def check_onednn_train_channels(net):
    """oneDNN's training kernels fail ("std::exception") on RRDBNet's dense concats unless ``nf`` and ``gc`` are
    multiples of its channel block (measured on AVX2: every nf or gc not a multiple of 8 fails, 8 / 16 / 24 train;
    on AVX-512: 8 and 24 fail, 16 and 32 train);
    -> one ConfigError naming both fixes. Other nets pass."""
    from .rrdbnet_arch import RRDBNet
    if not isinstance(net, RRDBNet) or not len(net.RRDB_trunk):
        return
    block = onednn_channel_block()
    nf, gc = net.conv_first._out_channels, net.RRDB_trunk[0].RDB1.conv1._out_channels
    if nf % block or gc % block:
        raise ConfigError(f"model.generator: nf {nf} / gc {gc} crash oneDNN's training kernels on this CPU; "
                          f"set nf and gc to multiples of {block} (e.g. nf 64, gc 32) or -o model.to_static=false")
