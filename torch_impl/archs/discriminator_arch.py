"""Discriminators: ESRGAN's VGG-style one and Real-ESRGAN's U-Net with spectral norm.

State-dict keys, for the converter:
- VGGDiscriminator128 (BasicSR ``VGGStyleDiscriminator`` = PaddleGAN ``VGGDiscriminator128``, same names on both):
  ``conv0_0.{weight,bias}``, ``conv0_1.weight``, ``bn0_1.*``, ``conv{1..4}_{0,1}.weight``, ``bn{1..4}_{0,1}.*``
  (+ ``conv5_*``/``bn5_*`` for input_size 256), ``linear1.*``, ``linear2.*``. BatchNorm tensors are ``weight``,
  ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked`` (paddle: ``_mean``, ``_variance``, no
  counter). Linear weights are (out, in) here and (in, out) in paddle: transpose when converting.
- UNetDiscriminatorSN (Real-ESRGAN): ``conv0.{weight,bias}``, ``conv9.{weight,bias}``; ``conv1..conv8`` carry
  ``torch.nn.utils.spectral_norm``, whose state dict holds ``convN.weight_orig`` (parameter, OIHW),
  ``convN.weight_u`` (buffer, shape (out,)) and ``convN.weight_v`` (buffer, shape (in*kh*kw,)); the normalised
  ``weight`` itself is recomputed on every forward and is not saved. Paddle's ``paddle.nn.utils.spectral_norm``
  saves the same three names with the same shapes (plus nothing else in its state dict).
"""
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

from common_data.errors import ConfigError, UserError

from . import ARCHS


@ARCHS.register()
class VGGDiscriminator128(nn.Module):
    """VGG-style discriminator for 128x128 (or 256x256) patches; one logit per image.

    Accepts PaddleGAN's ``in_channels`` and BasicSR's ``num_in_ch`` spellings; also registered as
    ``VGGStyleDiscriminator``.
    """

    def __init__(self, in_channels=3, num_feat=64, input_size=128, *, num_in_ch=None, norm_layer='batch'):
        super().__init__()
        in_channels = in_channels if num_in_ch is None else num_in_ch
        if input_size not in (128, 256):
            raise ConfigError(f"VGGDiscriminator128: input_size must be 128 or 256 (the GT patch size), "
                              f"got {input_size!r}")
        if norm_layer != 'batch':
            raise ConfigError(f"VGGDiscriminator128: only norm_layer 'batch' is supported, got {norm_layer!r}")
        self.input_size = input_size
        n_stages = 5 if input_size == 128 else 6
        widths = [num_feat * min(2 ** i, 8) for i in range(n_stages)]
        self.conv0_0 = nn.Conv2d(in_channels, num_feat, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(num_feat, num_feat, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(num_feat)
        for i in range(1, n_stages):
            setattr(self, f'conv{i}_0', nn.Conv2d(widths[i - 1], widths[i], 3, 1, 1, bias=False))
            setattr(self, f'bn{i}_0', nn.BatchNorm2d(widths[i]))
            setattr(self, f'conv{i}_1', nn.Conv2d(widths[i], widths[i], 4, 2, 1, bias=False))
            setattr(self, f'bn{i}_1', nn.BatchNorm2d(widths[i]))
        self.n_stages = n_stages
        self.linear1 = nn.Linear(widths[-1] * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2)

    def blocks(self):
        """``[(block, [parameter-name prefixes])]`` in forward order (FreezeD, common_data.training.freeze_d)."""
        stages = ['0_1'] + [f'{i}_{j}' for i in range(1, self.n_stages) for j in (0, 1)]
        return ([('conv0_0', ['conv0_0.'])] + [(f'conv{s}', [f'conv{s}.', f'bn{s}.']) for s in stages]
                + [('linear1', ['linear1.']), ('linear2', ['linear2.'])])

    def forward(self, x, return_feats=False):
        """Logits (N, 1); with ``return_feats`` also the activations after every block but the last (feature
        matching): conv0_0, conv0_1, ..., conv4_1 (conv + BatchNorm + LeakyReLU), linear1."""
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise UserError(f"VGGDiscriminator128: got a {x.shape[-2]}x{x.shape[-1]} input but input_size is "
                            f"{self.input_size}; make the GT patch size equal the discriminator's input_size")
        feats = [self.lrelu(self.conv0_0(x))]
        feats.append(self.lrelu(self.bn0_1(self.conv0_1(feats[-1]))))
        for i in range(1, self.n_stages):
            feats.append(self.lrelu(getattr(self, f'bn{i}_0')(getattr(self, f'conv{i}_0')(feats[-1]))))
            feats.append(self.lrelu(getattr(self, f'bn{i}_1')(getattr(self, f'conv{i}_1')(feats[-1]))))
        feats.append(self.lrelu(self.linear1(feats[-1].flatten(1))))
        out = self.linear2(feats[-1])
        return (out, feats) if return_feats else out


ARCHS.register(VGGDiscriminator128, name='VGGStyleDiscriminator')


@ARCHS.register()
class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator: per-pixel logits, spectral norm on conv1..conv8."""

    def __init__(self, num_in_ch=3, num_feat=64, skip_connection=True):
        super().__init__()
        self.skip_connection = skip_connection
        self.conv0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.conv1 = spectral_norm(nn.Conv2d(num_feat, num_feat * 2, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(num_feat * 2, num_feat * 4, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(num_feat * 4, num_feat * 8, 4, 2, 1, bias=False))
        self.conv4 = spectral_norm(nn.Conv2d(num_feat * 8, num_feat * 4, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(num_feat * 4, num_feat * 2, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(num_feat, 1, 3, 1, 1)

    def blocks(self):
        """``[(block, [parameter-name prefixes])]`` in forward order (FreezeD, common_data.training.freeze_d)."""
        return [(f'conv{i}', [f'conv{i}.']) for i in range(10)]

    def forward(self, x, return_feats=False):
        """Per-pixel logits (N, 1, H, W); with ``return_feats`` also the activations after conv0 .. conv8 (after
        the skip additions), for feature matching."""
        def act(t):
            return F.leaky_relu(t, negative_slope=0.2)

        def up(t):
            return F.interpolate(t, scale_factor=2, mode='bilinear', align_corners=False)

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
