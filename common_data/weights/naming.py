"""State-dict naming across frameworks and generations, on numpy arrays only.

A checkpoint is first *unwrapped* (``params_ema`` / ``params`` / PaddleGAN's ``generator`` ..., ``module.``
stripped), then *canonicalised*: its architecture is detected from key names, every key is renamed to BasicSR's
names with PyTorch's tensor conventions, and the hyper-parameters are inferred from shapes and checked against the
full expected key list. From the canonical form it is written out for either framework (``to_framework``).

Architectures and namings known here:

- ``RRDBNet`` in three naming generations (``GENERATOR_NAMINGS``):
  ``basicsr``    conv_first, body.N.rdbK.convJ, conv_body, conv_up1, conv_up2, conv_hr, conv_last
  ``ppgan``      conv_first, RRDB_trunk.N.RDBK.convJ, trunk_conv, upconv1, upconv2, HRconv, conv_last
                 (PaddleGAN, ESRGAN's 2019 code, BSRGAN/RealSR)
  ``esrgan2018`` model.0, model.1.sub.N.RDBK.convJ.0, model.1.sub.<nb>, model.3, model.6, model.8, model.10
                 (ESRGAN's first release: one flattened nn.Sequential; 3 = first upsampling conv, 6 = second)
  Scale 4 / 2 / 1 is read from conv_first's input channels (in_nc, in_nc*4, in_nc*16 after pixel-unshuffle),
  compared with conv_last's output channels, as BasicSR's x2/x1 models do.
- ``SRVGGNetCompact`` (Real-ESRGAN's compact net, ``realesrgan`` naming): ``body.N.weight`` / ``.bias``, convs at
  even N (0 first, 2 * num_conv + 2 last), activations at odd N. From the shapes: num_in_ch and num_feat (body.0),
  num_conv (index of the last conv), upscale (the last conv has num_in_ch * upscale**2 outputs: num_out_ch is taken
  equal to num_in_ch, as the arch requires). act_type is ``prelu`` when the odd layers carry (num_feat,) slopes;
  ReLU and LeakyReLU(0.1) carry no weights, so which of the two a file was trained with cannot be told from it:
  ``relu`` is assumed and the Canonical says so in a note (an ncnn graph does tell: common_data/weights/ncnn_reader.py). Paddle
  and torch files use the same names and tensor layouts (``body.N._weight``, paddle.nn.PReLU's name, is read too).
- ``VGGDiscriminator128`` (BasicSR's VGGStyleDiscriminator names): BatchNorm ``running_mean``/``running_var``
  (+ ``num_batches_tracked``) in torch, ``_mean``/``_variance`` in paddle; Linear weights (out, in) in torch and
  (in, out) in paddle.
- ``UNetDiscriminatorSN``: spectral norm keeps ``weight_orig``, ``weight_u``, ``weight_v`` in both frameworks.
- ``vgg_features``: torchvision's VGG (``features.N.*``, ``classifier.N.*``), for the perceptual loss.
"""
import functools
import re

import numpy as np

from common_data.errors import ConfigError, UserError, few

GENERATOR = "RRDBNet"
COMPACT = "SRVGGNetCompact"
GENERATORS = (GENERATOR, COMPACT)
VGG_DISCRIMINATOR = "VGGDiscriminator128"
UNET_DISCRIMINATOR = "UNetDiscriminatorSN"
VGG_FEATURES = "vgg_features"
GENERATOR_NAMINGS = ("basicsr", "ppgan", "esrgan2018")
FRAMEWORKS = ("paddle", "torch")

# Keys that hold a state dict inside a checkpoint, in the order they are tried.
WRAPPER_KEYS = ("params_ema", "params", "generator", "net_g", "state_dict", "model", "discriminator", "net_d")
STRIPPED_PREFIXES = ("module.", "_orig_mod.")


def strip_prefixes(name):
    """A tensor name without the prefixes DistributedDataParallel (``module.``) and torch.compile add."""
    for prefix in STRIPPED_PREFIXES:
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name

# Layer names of each generation, in the same order (the first row is the canonical one); {n} block,
# {k} dense block, {j} conv, {nb} block count.
_GENERATOR_NAMES = {
    "basicsr": ("conv_first", "body.{n}.rdb{k}.conv{j}", "conv_body", "conv_up1", "conv_up2", "conv_hr",
                "conv_last"),
    "ppgan": ("conv_first", "RRDB_trunk.{n}.RDB{k}.conv{j}", "trunk_conv", "upconv1", "upconv2", "HRconv",
              "conv_last"),
    "esrgan2018": ("model.0", "model.1.sub.{n}.RDB{k}.conv{j}.0", "model.1.sub.{nb}", "model.3", "model.6",
                   "model.8", "model.10"),
}
_SIGNATURES = {  # keys that must all be present for a layout to be recognised
    ("RRDBNet", "basicsr"): ("conv_first.weight", "body.0.rdb1.conv1.weight", "conv_last.weight"),
    ("RRDBNet", "ppgan"): ("conv_first.weight", "RRDB_trunk.0.RDB1.conv1.weight", "conv_last.weight"),
    ("RRDBNet", "esrgan2018"): ("model.0.weight", "model.1.sub.0.RDB1.conv1.0.weight"),
    (COMPACT, "realesrgan"): ("body.0.weight", "body.0.bias", "body.2.weight"),
    (VGG_DISCRIMINATOR, "basicsr"): ("conv0_0.weight", "conv0_1.weight", "linear1.weight", "linear2.weight"),
    (UNET_DISCRIMINATOR, "basicsr"): ("conv0.weight", "conv1.weight_orig", "conv9.weight"),
    (VGG_FEATURES, "torchvision"): ("features.0.weight", "features.0.bias"),
}
_BN_TORCH_TO_PADDLE = {"running_mean": "_mean", "running_var": "_variance"}
_BN_PADDLE_TO_TORCH = {v: k for k, v in _BN_TORCH_TO_PADDLE.items()}


class Canonical:
    """A state dict in canonical form: ``arch``, source ``naming``, ``state`` (BasicSR names, torch tensor
    conventions, numpy arrays) and ``hparams`` (constructor keyword arguments of our arch class)."""

    def __init__(self, arch, naming, state, hparams, notes=()):
        self.arch, self.naming, self.state, self.hparams = arch, naming, state, hparams
        self.notes = list(notes)  # what was assumed rather than read from the weights

    def describe(self):
        hp = ", ".join(f"{k}={v}" for k, v in self.hparams.items())
        notes = "".join(f"; {n}" for n in self.notes)
        return f"{self.arch} ({self.naming} naming{', ' + hp if hp else ''}{notes})"


# ----------------------------------------------------------------------------------------------------- unwrapping
def _is_array(v):
    return isinstance(v, np.ndarray)


def unwrap_state_dict(obj, key=None, source="checkpoint"):
    """-> (flat dict name -> ndarray, wrapper key used or None). ``module.`` / ``_orig_mod.`` prefixes go.

    ``key`` may be dotted (``nets.generator``). Without it: a flat dict is used as is, else the first of
    WRAPPER_KEYS found at the top level, else one level down (e.g. a training checkpoint's ``nets``).
    """
    if not isinstance(obj, dict):
        raise UserError(f"{source}: expected a dict of weights, found a {type(obj).__name__}")
    if key is not None:
        inner = obj
        for part in key.split("."):
            if not isinstance(inner, dict) or not isinstance(inner.get(part), dict):
                keys = few(inner, 5) if isinstance(inner, dict) else type(inner).__name__
                raise UserError(f"{source}: has no state dict under key {key!r}; keys there: {keys}")
            inner = inner[part]
    elif any(_is_array(v) for v in obj.values()):
        inner = obj
    else:
        key = _find_wrapper(obj)
        if key is None:
            raise UserError(f"{source}: found no weights; top-level keys are {few(obj, 5)} - pick one with --key")
        inner = obj
        for part in key.split("."):
            inner = inner[part]
    state = {}
    for name, value in inner.items():
        if not _is_array(value):
            continue
        state[strip_prefixes(name)] = value
    if not state:
        raise UserError(f"{source}: the state dict{f' under {key!r}' if key else ''} holds no arrays")
    return state, key


def _find_wrapper(obj):
    for k in WRAPPER_KEYS:
        if isinstance(obj.get(k), dict) and obj[k]:
            return k
    for outer, value in obj.items():
        if isinstance(value, dict):
            inner = next((k for k in WRAPPER_KEYS if isinstance(value.get(k), dict) and value[k]), None)
            if inner:
                return f"{outer}.{inner}"
    return None




# ------------------------------------------------------------------------------------------------------ detection
def detect(state, source="checkpoint"):
    """-> (arch, naming) from key names; unknown layouts raise one line listing a few keys."""
    for (arch, naming), keys in _SIGNATURES.items():
        if all(k in state for k in keys):
            return arch, naming
    raise UserError(f"{source}: unknown weights layout (not RRDBNet in BasicSR/PaddleGAN/ESRGAN-2018 naming, "
                    f"SRVGGNetCompact, VGGDiscriminator128, UNetDiscriminatorSN or torchvision VGG); "
                    f"its keys start: {few(state, 5)}")


def canonicalize(state, framework, source="checkpoint"):
    """Detect, rename to canonical form, infer and check hyper-parameters -> Canonical.

    ``framework`` ('paddle' or 'torch') says whose tensor conventions ``state`` follows.
    """
    _check_framework(framework)
    arch, naming = detect(state, source)
    if arch == GENERATOR:
        canon = _generator_to_canonical(state, naming, source)
    elif arch == COMPACT:
        canon = _compact_to_canonical(state, source)
    elif framework == "paddle":
        canon = _paddle_conventions_to_torch(state)
    else:
        canon = {k: v for k, v in state.items()}
    hparams = infer_hparams(arch, canon, source)
    check_shapes(arch, canon, hparams, source, naming)
    notes = [COMPACT_ACT_NOTE] if arch == COMPACT and hparams["act_type"] != "prelu" else []
    return Canonical(arch, naming, canon, hparams, notes)


def _check_framework(framework):
    if framework not in FRAMEWORKS:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, not {framework!r}")


# ------------------------------------------------------------------------------------------------ generator names
@functools.lru_cache(maxsize=None)
def _pattern(template, nb=None):
    """Template such as ``body.{n}.rdb{k}.conv{j}`` -> compiled full-match regex with named groups."""
    rx = re.escape(template)
    for name, digits in (("n", r"\d+"), ("k", "[123]"), ("j", "[1-5]")):
        rx = rx.replace(re.escape("{" + name + "}"), f"(?P<{name}>{digits})")
    rx = rx.replace(re.escape("{nb}"), str(nb) if nb is not None else "(?!)")
    return re.compile(rx + r"\.(?P<param>weight|bias)$")


def _rename_generator_key(key, src_naming, dst_naming, nb):
    """One key from ``src_naming`` to ``dst_naming`` or None if the key has no place in RRDBNet."""
    for src_tpl, dst_tpl in zip(_GENERATOR_NAMES[src_naming], _GENERATOR_NAMES[dst_naming]):
        m = _pattern(src_tpl, nb).match(key)
        if m:
            groups = {k: v for k, v in m.groupdict().items() if k != "param"}
            return dst_tpl.format(nb=nb, **groups) + "." + m.group("param")
    return None


def _block_count(state, naming):
    block = _pattern(_GENERATOR_NAMES[naming][1])
    found = {int(m.group("n")) for m in map(block.match, state) if m}
    return max(found) + 1 if found else 0


def _generator_to_canonical(state, naming, source):
    nb = _block_count(state, naming)
    if naming == "esrgan2018":
        _check_esrgan2018_upsampling(state, nb, source)
    canon, unplaced = {}, []
    for key, value in state.items():
        new = _rename_generator_key(key, naming, "basicsr", nb)
        if new is None:
            unplaced.append(key)
        else:
            canon[new] = value
    if unplaced:
        raise UserError(f"{source}: {len(unplaced)} key(s) have no place in RRDBNet ({naming} naming): "
                        f"{few(unplaced, 5)} - not a plain ESRGAN/Real-ESRGAN RRDBNet (ESRGAN+ or another arch?)")
    return canon


def _check_esrgan2018_upsampling(state, nb, source):
    """ESRGAN-2018 files number layers by position: only the x4 layout (two upsampling convs) fits RRDBNet."""
    top = {int(m.group(1)) for m in map(re.compile(r"model\.(\d+)\.weight$").match, state) if m}
    stages = (max(top, default=10) - 4) // 3 if top else 2
    if stages != 2:
        raise UserError(f"{source}: ESRGAN-2018 model with {stages} upsampling stage(s) (x{2 ** stages}); "
                        f"RRDBNet here upsamples x4 (x2/x1 through pixel-unshuffle) - this file cannot be used")


def generator_keys_for(naming, canonical_state, nb):
    """Rename a canonical generator state dict to ``naming``."""
    return {_rename_generator_key(k, "basicsr", naming, nb): v for k, v in canonical_state.items()}


# ---------------------------------------------------------------------------------------------- compact names
_COMPACT_KEY = re.compile(r"body\.(\d+)\.(weight|bias|_weight)$")
COMPACT_ACT_NOTE = "act_type relu assumed: relu and leakyrelu have no weights, the file cannot tell them apart"


def _compact_to_canonical(state, source):
    """SRVGGNetCompact keys are canonical already; paddle.nn.PReLU's ``_weight`` becomes ``weight``."""
    canon, unplaced = {}, []
    for key, value in state.items():
        m = _COMPACT_KEY.match(key)
        if m is None:
            unplaced.append(key)
        else:
            canon[f"body.{m.group(1)}.{'weight' if m.group(2) == '_weight' else m.group(2)}"] = value
    if unplaced:
        raise UserError(f"{source}: {len(unplaced)} key(s) have no place in SRVGGNetCompact: {few(unplaced, 5)}")
    return canon


def _compact_hparams(state):
    """SRVGGNetCompact keyword arguments from canonical shapes (see the module docstring)."""
    convs = sorted(int(k.split(".")[1]) for k, v in state.items() if k.endswith(".weight") and np.ndim(v) == 4)
    last = convs[-1]
    num_feat, num_in_ch = (int(d) for d in state["body.0.weight"].shape[:2])
    out = int(state[f"body.{last}.weight"].shape[0])
    upscale = int(round((out / num_in_ch) ** 0.5))
    if last % 2 or last < 2 or num_in_ch * upscale * upscale != out:
        raise ValueError(f"SRVGGNetCompact: last conv body.{last} with {out} outputs fits no num_conv / upscale "
                         f"for {num_in_ch} input channels")
    act = "prelu" if any(np.ndim(v) == 1 and int(k.split(".")[1]) % 2 for k, v in state.items()
                         if k.endswith(".weight")) else "relu"
    return {"num_in_ch": num_in_ch, "num_out_ch": num_in_ch, "num_feat": num_feat, "num_conv": last // 2 - 1,
            "upscale": upscale, "act_type": act}


def _compact_shapes(num_in_ch, num_out_ch, num_feat, num_conv, upscale, act_type, out_scale=None):
    s = {}
    _conv(s, "body.0", num_feat, num_in_ch)
    for i in range(num_conv + 1):
        if act_type == "prelu":
            s[f"body.{2 * i + 1}.weight"] = (num_feat,)
        if i < num_conv:
            _conv(s, f"body.{2 * i + 2}", num_feat, num_feat)
    _conv(s, f"body.{2 * num_conv + 2}", num_out_ch * upscale * upscale, num_feat)
    return s


# ------------------------------------------------------------------------------------------- tensor conventions
def _is_linear_weight(key, value):
    return key.endswith(".weight") and value.ndim == 2


def _paddle_conventions_to_torch(state):
    out = {}
    for key, value in state.items():
        prefix, _, param = key.rpartition(".")
        if param in _BN_PADDLE_TO_TORCH:
            out[f"{prefix}.{_BN_PADDLE_TO_TORCH[param]}"] = value
            out.setdefault(f"{prefix}.num_batches_tracked", np.zeros((), np.int64))
        elif _is_linear_weight(key, value):
            out[key] = np.ascontiguousarray(value.T)
        else:
            out[key] = value
    return out


def _torch_conventions_to_paddle(state):
    out = {}
    for key, value in state.items():
        prefix, _, param = key.rpartition(".")
        if param == "num_batches_tracked":
            continue
        if param in _BN_TORCH_TO_PADDLE:
            out[f"{prefix}.{_BN_TORCH_TO_PADDLE[param]}"] = value
        elif _is_linear_weight(key, value):
            out[key] = np.ascontiguousarray(value.T)
        else:
            out[key] = value
    return out


def to_framework(canonical, framework, naming=None):
    """Canonical -> flat state dict for ``framework``.

    Generators get PaddleGAN names for paddle and BasicSR names for torch unless ``naming`` says otherwise.
    """
    _check_framework(framework)
    state = canonical.state
    if canonical.arch == GENERATOR:
        naming = naming or ("ppgan" if framework == "paddle" else "basicsr")
        if naming not in GENERATOR_NAMINGS:
            raise UserError(f"naming must be one of {', '.join(GENERATOR_NAMINGS)}, not {naming!r}")
        return generator_keys_for(naming, state, canonical.hparams["nb"])
    if naming not in (None, "basicsr", "torchvision", "realesrgan"):
        raise UserError(f"--naming only applies to RRDBNet generators, not to {canonical.arch}")
    if framework == "paddle" and canonical.arch != COMPACT:  # the compact net's tensors are alike in both
        return _torch_conventions_to_paddle(state)
    return dict(state)


# --------------------------------------------------------------------------------------------- hyper-parameters
def infer_hparams(arch, state, source="checkpoint"):
    """Constructor keyword arguments of our arch class, from canonical shapes."""
    try:
        if arch == GENERATOR:
            return _generator_hparams(state)
        if arch == COMPACT:
            return _compact_hparams(state)
        if arch == VGG_DISCRIMINATOR:
            nf, in_ch = state["conv0_0.weight"].shape[:2]
            return {"in_channels": int(in_ch), "num_feat": int(nf),
                    "input_size": 256 if "conv5_0.weight" in state else 128}
        if arch == UNET_DISCRIMINATOR:
            nf, in_ch = state["conv0.weight"].shape[:2]
            return {"num_in_ch": int(in_ch), "num_feat": int(nf), "skip_connection": True}
        return {}
    except KeyError as e:
        raise UserError(f"{source}: {arch} weights lack {e.args[0]!r}; the file is incomplete") from None
    except ValueError as e:
        raise UserError(f"{source}: {e}") from None


def _generator_hparams(state):
    nf, first_in = (int(d) for d in state["conv_first.weight"].shape[:2])
    out_nc = int(state["conv_last.weight"].shape[0])
    if first_in == out_nc * 16:
        scale, in_nc = 1, out_nc
    elif first_in == out_nc * 4:
        scale, in_nc = 2, out_nc
    else:
        scale, in_nc = 4, first_in
    nb = len({k.split(".")[1] for k in state if k.startswith("body.")})
    gc = int(state["body.0.rdb1.conv1.weight"].shape[0])
    return {"in_nc": in_nc, "out_nc": out_nc, "nf": nf, "nb": nb, "gc": gc, "scale": scale}


def expected_shapes(arch, hparams):
    """Canonical key -> shape for an arch built with ``hparams`` (torch conventions); None for vgg_features."""
    if arch == GENERATOR:
        return _generator_shapes(**hparams)
    if arch == COMPACT:
        return _compact_shapes(**hparams)
    if arch == VGG_DISCRIMINATOR:
        return _vgg_discriminator_shapes(**hparams)
    if arch == UNET_DISCRIMINATOR:
        return _unet_shapes(hparams["num_in_ch"], hparams["num_feat"])
    return None


def _conv(shapes, name, out_ch, in_ch, k=3, bias=True):
    shapes[f"{name}.weight"] = (out_ch, in_ch, k, k)
    if bias:
        shapes[f"{name}.bias"] = (out_ch,)


def _generator_shapes(in_nc, out_nc, nf, nb, gc, scale):
    s = {}
    _conv(s, "conv_first", nf, in_nc * {4: 1, 2: 4, 1: 16}[scale])
    for n in range(nb):
        for k in (1, 2, 3):
            for j in range(1, 6):
                _conv(s, f"body.{n}.rdb{k}.conv{j}", gc if j < 5 else nf, nf + (j - 1) * gc)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        _conv(s, name, nf, nf)
    _conv(s, "conv_last", out_nc, nf)
    return s


def _bn(shapes, name, ch):
    for p in ("weight", "bias", "running_mean", "running_var"):
        shapes[f"{name}.{p}"] = (ch,)
    shapes[f"{name}.num_batches_tracked"] = ()


def _vgg_discriminator_shapes(in_channels, num_feat, input_size):
    stages = 5 if input_size == 128 else 6
    widths = [num_feat * min(2 ** i, 8) for i in range(stages)]
    s = {}
    _conv(s, "conv0_0", num_feat, in_channels)
    _conv(s, "conv0_1", num_feat, num_feat, 4, bias=False)
    _bn(s, "bn0_1", num_feat)
    for i in range(1, stages):
        _conv(s, f"conv{i}_0", widths[i], widths[i - 1], bias=False)
        _bn(s, f"bn{i}_0", widths[i])
        _conv(s, f"conv{i}_1", widths[i], widths[i], 4, bias=False)
        _bn(s, f"bn{i}_1", widths[i])
    s["linear1.weight"], s["linear1.bias"] = (100, widths[-1] * 16), (100,)
    s["linear2.weight"], s["linear2.bias"] = (1, 100), (1,)
    return s


def _unet_shapes(num_in_ch, num_feat):
    f = num_feat
    s = {}
    _conv(s, "conv0", f, num_in_ch)
    plan = [(2 * f, f, 4), (4 * f, 2 * f, 4), (8 * f, 4 * f, 4), (4 * f, 8 * f, 3), (2 * f, 4 * f, 3),
            (f, 2 * f, 3), (f, f, 3), (f, f, 3)]
    for i, (o, c, k) in enumerate(plan, start=1):
        s[f"conv{i}.weight_orig"], s[f"conv{i}.weight_u"], s[f"conv{i}.weight_v"] = (o, c, k, k), (o,), (c * k * k,)
    _conv(s, "conv9", 1, f)
    return s


def key_mismatch(expected, found, n=4):
    """One-line summary of missing / unexpected / wrongly shaped keys (dicts key -> shape), '' when they agree."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shaped = [f"{k} {tuple(found[k])} != {tuple(expected[k])}" for k in expected
              if k in found and tuple(found[k]) != tuple(expected[k])]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing ({few(missing, n)})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected ({few(unexpected, n)})")
    if shaped:
        parts.append(f"{len(shaped)} of another shape ({few(shaped, n)})")
    return "; ".join(parts)


def check_shapes(arch, state, hparams, source="checkpoint", naming="basicsr"):
    """Compare a canonical state dict with the full expected key list; one UserError line if they differ."""
    expected = expected_shapes(arch, hparams)
    if expected is None:
        return
    # Older torch files may lack num_batches_tracked: not an error.
    found = {k: np.shape(v) for k, v in state.items()}
    for k in expected:
        if k.endswith(".num_batches_tracked") and k not in found:
            state[k] = np.zeros((), np.int64)
            found[k] = ()
    problem = key_mismatch(expected, found)
    if problem:
        hp = ", ".join(f"{k}={v}" for k, v in hparams.items())
        raise UserError(f"{source}: does not fit {arch}({hp}) inferred from its shapes: {problem}")


def arch_config(canonical):
    """``{'name': ..., **hparams}`` for our arch registries, or None for weights without an arch class."""
    if canonical.arch == VGG_FEATURES:
        return None
    return {"name": canonical.arch, **canonical.hparams}


def default_wrapper(arch, framework):
    """Top-level key a converted file is saved under: PaddleGAN's ``generator``/``discriminator`` for paddle,
    BasicSR's ``params_ema`` (generator) / ``params`` (discriminator) for torch; None = flat (VGG features)."""
    if arch == VGG_FEATURES:
        return None
    if framework == "paddle":
        return "generator" if arch in GENERATORS else "discriminator"
    return "params_ema" if arch in GENERATORS else "params"


def is_generator(arch):
    """True for the super-resolution nets (RRDBNet, SRVGGNetCompact), False for discriminators and VGG."""
    return arch in GENERATORS


def in_channels(hparams):
    """Input channels of a generator's hparams (RRDBNet's ``in_nc``, SRVGGNetCompact's ``num_in_ch``)."""
    return int(hparams["in_nc"] if "in_nc" in hparams else hparams["num_in_ch"])


def out_channels(hparams):
    return int(hparams["out_nc"] if "out_nc" in hparams else hparams["num_out_ch"])


def net_scale(hparams):
    """Output size / input size of a generator: RRDBNet's ``scale``; SRVGGNetCompact's ``out_scale`` if set (the
    ncnn x2 / x3 files' final resize), else its ``upscale``."""
    if "upscale" in hparams:
        return int(hparams.get("out_scale") or hparams["upscale"])
    return int(hparams["scale"])


def unshuffle_multiple(hparams):
    """Input sides must be a multiple of this (pixel-unshuffle of x2 / x1 RRDBNets; 1 for other nets)."""
    if "nb" not in hparams:
        return 1
    return {4: 1, 2: 2, 1: 4}[int(hparams["scale"])]


def receptive_radius(hparams):
    """Input pixels on each side that can reach one generator output pixel (3x3 convs).

    RRDBNet (scale 4 / 2 / 1): conv_first + 15 convs per RRDB + conv_body at the unshuffled resolution, then one conv
    at x2 and three at x4 (1/2 + 3/4 of a low-resolution pixel, rounded up to 2); unshuffle by f multiplies it by f.
    SRVGGNetCompact: num_conv + 2 convs at the input resolution (nearest upsampling and pixel shuffle add nothing),
    + 1 for a final bicubic resize (2 output pixels of the x``upscale`` image, under one input pixel).
    """
    if "nb" not in hparams:
        resize = 1 if int(hparams.get("out_scale") or hparams["upscale"]) != int(hparams["upscale"]) else 0
        return int(hparams["num_conv"]) + 2 + resize
    low_res = 1 + 15 * int(hparams["nb"]) + 1 + 2
    return low_res * unshuffle_multiple(hparams)


def float_state(state):
    """float16/float64 arrays -> float32 (as both frameworks load by default); other dtypes kept."""
    return {k: (v.astype(np.float32) if v.dtype.kind == "f" and v.dtype != np.float32 else v)
            for k, v in state.items()}


__all__ = ["GENERATOR", "COMPACT", "GENERATORS", "VGG_DISCRIMINATOR", "UNET_DISCRIMINATOR", "VGG_FEATURES",
           "GENERATOR_NAMINGS",
           "Canonical", "unwrap_state_dict", "detect", "canonicalize", "to_framework", "infer_hparams",
           "expected_shapes", "key_mismatch", "check_shapes", "arch_config", "default_wrapper", "float_state",
           "strip_prefixes",
           "generator_keys_for", "unshuffle_multiple", "receptive_radius", "is_generator", "in_channels",
           "out_channels", "net_scale"]


NET_STATE_KEYS = ("params_ema", "params")  # BasicSR's generator (EMA first) / any net; then PaddleGAN's net name


def pick_net_state(state, net_name, param_key=None, source="weights"):
    """The state dict of ``net_name`` in a loaded file: ``state[param_key]`` when given (else one ConfigError naming
    the option), else the first of ``params_ema`` / ``params`` / ``net_name`` holding a dict, else ``state`` itself
    (a bare state dict). BasicSR's load_network and PaddleGAN's layout in one rule, for both backends."""
    if param_key:
        if not isinstance(state.get(param_key), dict):
            raise ConfigError(f"{source}: no key {param_key!r} (set by model.param_key_{net_name[0]}); it has "
                            f"{few(state, 8)}")
        return state[param_key]
    for key in NET_STATE_KEYS + (net_name,):
        if isinstance(state.get(key), dict):
            return state[key]
    return state
