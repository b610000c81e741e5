"""RRDBNet (ESRGAN generator) with BasicSR's scale 1 / 2 support. The Paddle backend keeps PaddleGAN's parameter
names (``ppgan.models.generators.RRDBNet``), the PyTorch backend BasicSR's::

    PaddleGAN (paddle_impl)              BasicSR (torch_impl)
    conv_first                           conv_first
    RRDB_trunk.N.RDB{1,2,3}.conv{1..5}   body.N.rdb{1,2,3}.conv{1..5}
    trunk_conv                           conv_body
    upconv1, upconv2                     conv_up1, conv_up2
    HRconv                               conv_hr
    conv_last                            conv_last

every one a conv with ``.weight`` (OIHW) and ``.bias``, so a checkpoint converts by renaming only.
"""
import math

import paddle
from paddle import nn
from paddle.nn import functional as F

from common_data.errors import ConfigError

from . import ARCHS
from .onednn_train import conv_act


def default_init_weights(convs, scale=1.0):
    """BasicSR's init: Kaiming-normal (fan_in, ReLU gain) weights times ``scale``, zero biases.

    Skipped while building a static program (``to_static`` training): its weights are set from an eager net.
    """
    if not paddle.in_dynamic_mode():
        return
    kaiming = nn.initializer.KaimingNormal()
    for conv in convs:
        kaiming(conv.weight)
        conv.weight.set_value(conv.weight * scale)
        if conv.bias is not None:
            conv.bias.set_value(paddle.zeros_like(conv.bias))


def torch_default_init(conv):
    """PyTorch's default Conv2d init (uniform +-1/sqrt(fan_in) for weight and bias), so both backends start alike."""
    if not paddle.in_dynamic_mode():
        return
    fan_in = conv.weight.shape[1] * conv.weight.shape[2] * conv.weight.shape[3]
    bound = 1.0 / math.sqrt(fan_in)
    uniform = nn.initializer.Uniform(-bound, bound)
    uniform(conv.weight)
    if conv.bias is not None:
        uniform(conv.bias)


def pixel_unshuffle(x, factor):
    """(N, C, H*f, W*f) -> (N, C*f*f, H, W), channel order c*f*f + i*f + j as BasicSR's and
    ``torch.nn.functional.pixel_unshuffle``."""
    return F.pixel_unshuffle(x, factor)


class ResidualDenseBlock(nn.Layer):
    """Five densely connected 3x3 convs (growth ``gc``), LeakyReLU(0.2), residual scaled by 0.2."""

    onednn_ops = False  # this block's own flag, set by onednn_train_ops(net)

    def __init__(self, nf=64, gc=32):
        super().__init__()
        for i in range(5):
            setattr(self, f"conv{i + 1}", nn.Conv2D(nf + i * gc, nf if i == 4 else gc, 3, 1, 1))
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)
        default_init_weights([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x):
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(conv_act(conv, paddle.concat(feats, 1), self.lrelu, self.onednn_ops))
        return conv_act(self.conv5, paddle.concat(feats, 1), None, self.onednn_ops) * 0.2 + x


class RRDB(nn.Layer):
    """Residual in Residual Dense Block: three ResidualDenseBlocks, residual scaled by 0.2."""

    def __init__(self, nf, gc=32):
        super().__init__()
        self.RDB1 = ResidualDenseBlock(nf, gc)
        self.RDB2 = ResidualDenseBlock(nf, gc)
        self.RDB3 = ResidualDenseBlock(nf, gc)

    def forward(self, x):
        return self.RDB3(self.RDB2(self.RDB1(x))) * 0.2 + x


@ARCHS.register()
class RRDBNet(nn.Layer):
    """ESRGAN generator. Takes PaddleGAN's (in_nc, out_nc, nf, nb, gc) or BasicSR's (num_in_ch, ...) keywords.

    ``scale`` 4 upsamples directly; 2 and 1 first pixel-unshuffle the input by 2 and 4 (BasicSR/Real-ESRGAN),
    reflect-padding it on the bottom / right to a multiple of that factor and cropping the output back to
    ``scale * size``, so any size works. The residual-dense-block convs get BasicSR's 0.1-scaled Kaiming init, the
    other convs PyTorch's default init (on Paddle too, through ``torch_default_init``), so both backends start from
    the same distribution.
    """

    onednn_ops = False  # this net's own flag, set by onednn_train_ops(net)

    def __init__(self, in_nc=3, out_nc=3, nf=64, nb=23, gc=32, scale=4, *, num_in_ch=None, num_out_ch=None,
                 num_feat=None, num_block=None, num_grow_ch=None):
        super().__init__()
        in_nc = in_nc if num_in_ch is None else num_in_ch
        out_nc = out_nc if num_out_ch is None else num_out_ch
        nf = nf if num_feat is None else num_feat
        nb = nb if num_block is None else num_block
        gc = gc if num_grow_ch is None else num_grow_ch
        if scale not in (1, 2, 4):
            raise ConfigError(f"RRDBNet: scale must be 1, 2 or 4, got {scale!r}; fix the generator's scale key")
        self.scale = scale
        self.unshuffle = {4: 1, 2: 2, 1: 4}[scale]

        self.conv_first = nn.Conv2D(in_nc * self.unshuffle ** 2, nf, 3, 1, 1)
        self.RRDB_trunk = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
        self.trunk_conv = nn.Conv2D(nf, nf, 3, 1, 1)
        self.upconv1 = nn.Conv2D(nf, nf, 3, 1, 1)
        self.upconv2 = nn.Conv2D(nf, nf, 3, 1, 1)
        self.HRconv = nn.Conv2D(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2D(nf, out_nc, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)
        for conv in (self.conv_first, self.trunk_conv, self.upconv1, self.upconv2, self.HRconv, self.conv_last):
            torch_default_init(conv)

    def forward(self, x):
        h, w = x.shape[2], x.shape[3]
        feat, pad_h, pad_w = x, 0, 0
        if self.unshuffle > 1:
            pad_h, pad_w = (-h) % self.unshuffle, (-w) % self.unshuffle
            if pad_h or pad_w:
                feat = F.pad(feat, [0, pad_w, 0, pad_h], mode="reflect")
            feat = pixel_unshuffle(feat, self.unshuffle)
        lrelu, ops = self.lrelu, self.onednn_ops
        feat = conv_act(self.conv_first, feat, None, ops)
        feat = feat + conv_act(self.trunk_conv, self.RRDB_trunk(feat), None, ops)
        feat = conv_act(self.upconv1, F.interpolate(feat, scale_factor=2, mode="nearest"), lrelu, ops)
        feat = conv_act(self.upconv2, F.interpolate(feat, scale_factor=2, mode="nearest"), lrelu, ops)
        out = conv_act(self.conv_last, conv_act(self.HRconv, feat, lrelu, ops), None, ops)
        if pad_h or pad_w:  # crop what the padding added
            out = out[:, :, :h * self.scale, :w * self.scale]
        return out
