"""Discriminators: ESRGAN's VGG-style one and Real-ESRGAN's U-Net with spectral norm.

State-dict keys, for the converter:

- VGGDiscriminator128 (PaddleGAN's ``VGGDiscriminator128`` = BasicSR's ``VGGStyleDiscriminator``, same names)::

    conv0_0.{weight,bias}; conv{0_1,1_0,1_1,...,4_1}.weight (no bias); bn{0_1,1_0,...,4_1}.*;
    conv5_0 / conv5_1 / bn5_* only for input_size 256; linear1.{weight,bias}; linear2.{weight,bias}

  Framework differences: Linear weights are [in, out] in Paddle and [out, in] in PyTorch (transpose); BatchNorm
  keeps ``_mean`` / ``_variance`` in Paddle where PyTorch has ``running_mean`` / ``running_var`` and a
  ``num_batches_tracked`` counter that Paddle lacks (drop it / set it to 0).

- UNetDiscriminatorSN (Real-ESRGAN): conv0.{weight,bias}; conv1..conv8 spectral-normed, no bias;
  conv9.{weight,bias}. ``paddle.nn.utils.spectral_norm`` and ``torch.nn.utils.spectral_norm`` store, per normed
  conv, the same keys with the same shapes and meaning::

    convK.weight_orig  [out, in, kh, kw]   the parameter (weight = weight_orig / sigma)
    convK.weight_u     [out]               power-iteration left vector (buffer)
    convK.weight_v     [in*kh*kw]          power-iteration right vector (buffer)

  ``convK.weight`` itself is recomputed before every forward and is not in the state dict on either side.
  Power iterations run in train mode only.
"""
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

from common_data.errors import ConfigError, UserError

from . import ARCHS


@ARCHS.register()
class VGGDiscriminator128(nn.Module):
    """VGG-style discriminator (ESRGAN) for 128x128 (or 256x256) inputs; logits of shape (N, 1).

    Takes PaddleGAN's ``in_channels`` (and its ``norm_layer="batch"``) or BasicSR's ``num_in_ch``; also registered
    as ``VGGStyleDiscriminator``.
    """

    def __init__(self, in_channels=3, num_feat=64, input_size=128, *, num_in_ch=None, norm_layer="batch"):
        super().__init__()
        in_channels = in_channels if num_in_ch is None else num_in_ch
        if input_size not in (128, 256):
            raise ConfigError(f"VGGDiscriminator128: input_size must be 128 or 256 (the GT patch size), "
                              f"got {input_size!r}")
        if norm_layer != "batch":
            raise ConfigError(f"VGGDiscriminator128: only norm_layer 'batch' is supported, got {norm_layer!r}")
        self.input_size = input_size
        f = num_feat
        # (name suffix, in, out, kernel, stride); every conv but conv0_0 is bias-free and followed by a BatchNorm.
        stages = [("0_1", f, f, 4, 2),
                  ("1_0", f, 2 * f, 3, 1), ("1_1", 2 * f, 2 * f, 4, 2),
                  ("2_0", 2 * f, 4 * f, 3, 1), ("2_1", 4 * f, 4 * f, 4, 2),
                  ("3_0", 4 * f, 8 * f, 3, 1), ("3_1", 8 * f, 8 * f, 4, 2),
                  ("4_0", 8 * f, 8 * f, 3, 1), ("4_1", 8 * f, 8 * f, 4, 2)]
        if input_size == 256:
            stages += [("5_0", 8 * f, 8 * f, 3, 1), ("5_1", 8 * f, 8 * f, 4, 2)]
        self.conv0_0 = nn.Conv2d(in_channels, f, 3, 1, 1)
        self.stage_names = [s[0] for s in stages]
        for name, cin, cout, k, stride in stages:
            setattr(self, "conv" + name, nn.Conv2d(cin, cout, k, stride, 1, bias=False))
            setattr(self, "bn" + name, nn.BatchNorm2d(cout))
        self.linear1 = nn.Linear(8 * f * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)

    def blocks(self):
        """``[(block, [parameter-name prefixes])]`` in forward order (FreezeD, common_data.training.freeze_d)."""
        return ([("conv0_0", ["conv0_0."])] + [("conv" + s, [f"conv{s}.", f"bn{s}."]) for s in self.stage_names]
                + [("linear1", ["linear1."]), ("linear2", ["linear2."])])

    def forward(self, x, return_feats=False):
        """Logits (N, 1); with ``return_feats`` also the activations after every block but the last (feature
        matching): conv0_0, conv0_1, ..., conv4_1 (conv + BatchNorm + LeakyReLU), linear1."""
        if x.shape[2] != self.input_size or x.shape[3] != self.input_size:
            raise UserError(f"VGGDiscriminator128: got a {x.shape[2]}x{x.shape[3]} input but input_size is "
                            f"{self.input_size}; make gt_size (the GT patch size) equal the discriminator's input_size")
        feats = [self.lrelu(self.conv0_0(x))]
        for name in self.stage_names:
            feats.append(self.lrelu(getattr(self, "bn" + name)(getattr(self, "conv" + name)(feats[-1]))))
        # reshape, not flatten: Paddle's flatten has no second-order gradient (WGAN-GP penalty)
        feats.append(self.lrelu(self.linear1(feats[-1].reshape([feats[-1].shape[0], -1]))))
        out = self.linear2(feats[-1])
        return (out, feats) if return_feats else out


ARCHS.register(VGGDiscriminator128, name="VGGStyleDiscriminator")


@ARCHS.register()
class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator with spectral norm on conv1..conv8; per-pixel logits (N, 1, H, W), H and
    W multiples of 8."""

    def __init__(self, num_in_ch=3, num_feat=64, skip_connection=True):
        super().__init__()
        self.skip_connection = skip_connection
        f = num_feat
        self.conv0 = nn.Conv2d(num_in_ch, f, 3, 1, 1)
        self.conv1 = spectral_norm(nn.Conv2d(f, 2 * f, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(2 * f, 4 * f, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(4 * f, 8 * f, 4, 2, 1, bias=False))
        self.conv4 = spectral_norm(nn.Conv2d(8 * f, 4 * f, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(4 * f, 2 * f, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(2 * f, f, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)

    def blocks(self):
        """``[(block, [parameter-name prefixes])]`` in forward order (FreezeD, common_data.training.freeze_d)."""
        return [(f"conv{i}", [f"conv{i}."]) for i in range(10)]

    def forward(self, x, return_feats=False):
        """Per-pixel logits (N, 1, H, W); with ``return_feats`` also the activations after conv0 .. conv8 (after
        the skip additions), for feature matching."""
        def act(t):
            return F.leaky_relu(t, negative_slope=0.2)

        up = upsample2x

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        x7 = act(self.conv7(x6))
        x8 = act(self.conv8(x7))
        out = self.conv9(x8)
        return (out, [x0, x1, x2, x3, x4, x5, x6, x7, x8]) if return_feats else out


def upsample2x(t):
    """Bilinear x2 upsampling with align_corners=False (torch's ``F.interpolate``)."""
    return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)
