"""ESRGAN's generator, RRDBNet, with BasicSR's state-dict names.

Keys: ``conv_first``, ``body.N.rdb{1,2,3}.conv{1..5}``, ``conv_body``, ``conv_up1``, ``conv_up2``, ``conv_hr``,
``conv_last`` (each ``.weight`` OIHW and ``.bias``). PaddleGAN names the same tensors ``RRDB_trunk.N.RDB{1,2,3}``,
``trunk_conv``, ``upconv1``, ``upconv2``, ``HRconv``, so checkpoints convert by renaming alone.
"""
import torch
from torch import nn
from torch.nn import functional as F

from common_data.errors import ConfigError

from . import ARCHS

SUPPORTED_SCALES = (1, 2, 4)


def default_init_weights(modules, scale=1.0, bias_fill=0.0):
    """BasicSR's init: Kaiming-normal weights multiplied by ``scale``, biases set to ``bias_fill``."""
    for m in modules:
        nn.init.kaiming_normal_(m.weight)
        with torch.no_grad():
            m.weight.mul_(scale)
        if m.bias is not None:
            nn.init.constant_(m.bias, bias_fill)


def pixel_unshuffle(x, scale):
    """(N, C, H*s, W*s) -> (N, C*s*s, H, W); channel order c*s*s + i*s + j as BasicSR's."""
    return F.pixel_unshuffle(x, scale)


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; the output is ``x + 0.2 * conv5(...)``."""

    def __init__(self, num_feat=64, num_grow_ch=32):
        super().__init__()
        for i in range(5):
            out_ch = num_feat if i == 4 else num_grow_ch
            setattr(self, f'conv{i + 1}', nn.Conv2d(num_feat + i * num_grow_ch, out_ch, 3, 1, 1))
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)
        default_init_weights([self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], 0.1)

    def forward(self, x):
        feats = [x]
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
            feats.append(self.lrelu(conv(torch.cat(feats, 1))))
        return self.conv5(torch.cat(feats, 1)) * 0.2 + x


class RRDB(nn.Module):
    """Residual in residual dense block: three ResidualDenseBlocks, residual scaled by 0.2."""

    def __init__(self, num_feat, num_grow_ch=32):
        super().__init__()
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch)

    def forward(self, x):
        return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x


@ARCHS.register()
class RRDBNet(nn.Module):
    """ESRGAN generator; accepts PaddleGAN's (in_nc, nf, nb, gc) and BasicSR's (num_in_ch, num_feat, ...) names.

    For scale 2 / 1 the input is pixel-unshuffled by 2 / 4 first (BasicSR); an input whose size is not a multiple
    of that factor is reflect-padded on the bottom/right and the output cropped back to ``scale * size``.
    Only the residual-dense-block convs get BasicSR's 0.1-scaled Kaiming init; the others keep the default.
    """

    def __init__(self, in_nc=3, out_nc=3, nf=64, nb=23, gc=32, scale=4, *, num_in_ch=None, num_out_ch=None,
                 num_feat=None, num_block=None, num_grow_ch=None):
        super().__init__()
        in_nc = in_nc if num_in_ch is None else num_in_ch
        out_nc = out_nc if num_out_ch is None else num_out_ch
        nf = nf if num_feat is None else num_feat
        nb = nb if num_block is None else num_block
        gc = gc if num_grow_ch is None else num_grow_ch
        if scale not in SUPPORTED_SCALES:
            raise ConfigError(f"RRDBNet: scale must be one of {SUPPORTED_SCALES}, got {scale!r}")
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
        h, w = x.shape[-2:]
        feat = x
        if self.unshuffle > 1:
            f = self.unshuffle
            pad_h, pad_w = (-h) % f, (-w) % f
            if pad_h or pad_w:
                feat = F.pad(feat, (0, pad_w, 0, pad_h), mode='reflect')
            feat = pixel_unshuffle(feat, f)
        feat = self.conv_first(feat)
        feat = feat + self.conv_body(self.body(feat))
        feat = self.lrelu(self.conv_up1(F.interpolate(feat, scale_factor=2, mode='nearest')))
        feat = self.lrelu(self.conv_up2(F.interpolate(feat, scale_factor=2, mode='nearest')))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        if self.unshuffle > 1:
            out = out[..., :h * self.scale, :w * self.scale]
        return out
