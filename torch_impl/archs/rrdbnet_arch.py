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
import torch
from torch import nn
from torch.nn import functional as F

from common_data.errors import ConfigError

from . import ARCHS


def default_init_weights(convs, scale=1.0):
    """BasicSR's init: Kaiming-normal (fan_in, ReLU gain) weights times ``scale``, zero biases."""
    for conv in convs:
        nn.init.kaiming_normal_(conv.weight)
        with torch.no_grad():
            conv.weight.mul_(scale)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)


def pixel_unshuffle(x, factor):
    """(N, C, H*f, W*f) -> (N, C*f*f, H, W), channel order c*f*f + i*f + j as BasicSR's and
    ``torch.nn.functional.pixel_unshuffle``."""
    return F.pixel_unshuffle(x, factor)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs (growth ``gc``), LeakyReLU(0.2), residual scaled by 0.2."""

    def __init__(self, nf=64, gc=32):
        super().__init__()
        for i in range(5):
            setattr(self, f"conv{i + 1}", nn.Conv2d(nf + i * gc, nf if i == 4 else gc, 3, 1, 1))
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)
        default_init_weights([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x):
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(self.lrelu(conv(torch.cat(feats, 1))))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x


class RRDB(nn.Module):
    """Residual in Residual Dense Block: three ResidualDenseBlocks, residual scaled by 0.2."""

    def __init__(self, nf, gc=32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(nf, gc)
        self.rdb2 = ResidualDenseBlock(nf, gc)
        self.rdb3 = ResidualDenseBlock(nf, gc)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


@ARCHS.register()
class RRDBNet(nn.Module):
    """ESRGAN generator. Takes PaddleGAN's (in_nc, out_nc, nf, nb, gc) or BasicSR's (num_in_ch, ...) keywords.

    ``scale`` 4 upsamples directly; 2 and 1 first pixel-unshuffle the input by 2 and 4 (BasicSR/Real-ESRGAN),
    reflect-padding it on the bottom / right to a multiple of that factor and cropping the output back to
    ``scale * size``, so any size works. The residual-dense-block convs get BasicSR's 0.1-scaled Kaiming init, the
    other convs PyTorch's default init (on Paddle too, through ``torch_default_init``), so both backends start from
    the same distribution.
    """

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

        self.conv_first = nn.Conv2d(in_nc * self.unshuffle ** 2, nf, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(nf, gc) for _ in range(nb)])
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)

    def forward(self, x):
        h, w = x.shape[2], x.shape[3]
        feat, pad_h, pad_w = x, 0, 0
        if self.unshuffle > 1:
            pad_h, pad_w = (-h) % self.unshuffle, (-w) % self.unshuffle
            if pad_h or pad_w:
                feat = F.pad(feat, [0, pad_w, 0, pad_h], mode="reflect")
            feat = pixel_unshuffle(feat, self.unshuffle)
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode="nearest")))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode="nearest")))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        if pad_h or pad_w:  # crop what the padding added
            out = out[:, :, :h * self.scale, :w * self.scale]
        return out
