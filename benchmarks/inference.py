"""RRDBNet inference speed and memory of tools/infer.py's backends, measured side by side in one run.

Engines: torch eager, onnxruntime (exported from torch), paddle eager and Paddle Inference with oneDNN, each loaded
through ``infer.load_upscaler`` (the code tools/infer.py runs) in its own subprocess, round-robin, medians. Speed is
GFLOP/s = 2 x conv MACs / second (MACs counted from the layer shapes, ``conv_macs_per_pixel``) on random weights,
next to a numpy float32 matmul measured in the same run: on a shared machine absolute numbers move, the ratios
between columns measured side by side are what to read. Memory is the peak RSS of ``tools/infer.py`` upscaling a
1024x1024 image x4 in 256-pixel tiles, read with ``resource.getrusage(RUSAGE_CHILDREN)`` in a fresh parent process.

    python benchmarks/inference.py                          # nb 6 and 23 at 1x3x128x128, RSS with nb 1
    python benchmarks/inference.py --nb 6 --repeats 2 --rss-size 0   # speed only
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from common_data.weights import naming as W

# engine label -> (tools/infer.py --backend, --precision)
ENGINES = {
    "torch eager": ("torch", "fp32"),
    "onnxruntime": ("onnx", "fp32"),
    "paddle eager": ("paddle", "fp32"),
    "Paddle Inference (oneDNN)": ("paddle-inference", "fp32"),
    "torch bf16 + channels_last": ("torch", "bf16"),
    "Paddle Inference bf16": ("paddle-inference", "bf16"),
}
ESRGAN_X4_MACS = 17.9e6  # RRDBNet nb=23 nf=64 gc=32 x4, per input pixel (ESRGAN's published cost)

# canonical layer -> output pixels per (unshuffled) input pixel: the two upsampling stages double H and W each
_LAYER_AREA = {"conv_up1": 4, "conv_up2": 16, "conv_hr": 16, "conv_last": 16}


def conv_macs_per_pixel(nb, nf=64, gc=32, scale=4, in_nc=3, out_nc=3):
    """Multiply-accumulates of all RRDBNet convolutions per input pixel, from the layer shapes.

    Each conv costs out x in x kh x kw MACs per output pixel; layers after an upsampling run on 4 or 16 times the
    pixels, and x2 / x1 models start at 1/4 or 1/16 of the input pixels (pixel-unshuffle).
    """
    hp = dict(in_nc=in_nc, out_nc=out_nc, nf=nf, nb=nb, gc=gc, scale=scale)
    unshuffled = W.unshuffle_multiple(hp) ** 2
    total = 0
    for key, shape in W.expected_shapes(W.GENERATOR, hp).items():
        if key.endswith(".weight"):
            out_ch, in_ch, kh, kw = shape
            total += out_ch * in_ch * kh * kw * _LAYER_AREA.get(key.rsplit(".", 1)[0], 1)
    return total / unshuffled


def check_mac_count():
    macs = conv_macs_per_pixel(23)
    if abs(macs - ESRGAN_X4_MACS) > 0.005 * ESRGAN_X4_MACS:
        raise SystemExit(f"MAC count {macs / 1e6:.2f} M per pixel for nb=23 is not ESRGAN's 17.9 M")
    return macs


def sgemm_gflops(n=1024, repeats=7):
    """numpy float32 n x n matmul GFLOP/s (median): the machine's reference speed in this run."""
    import numpy as np
    rng = np.random.default_rng(0)
    a, b = rng.random((n, n), dtype=np.float32), rng.random((n, n), dtype=np.float32)
    a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / statistics.median(times) / 1e9


def random_weights(folder, nb, nf, gc, seed=0):
    """A BasicSR-initialised RRDBNet x4 (Kaiming x0.1 in the dense blocks) saved as .pth and .pdparams."""
    import numpy as np
    from esrgan_twin.commands import convert as cw
    hp = dict(in_nc=3, out_nc=3, nf=nf, nb=nb, gc=gc, scale=4)
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in W.expected_shapes(W.GENERATOR, hp).items():
        if key.endswith(".bias"):
            state[key] = np.zeros(shape, np.float32)
        else:
            fan_in = shape[1] * shape[2] * shape[3]
            gain = 0.1 if key.startswith("body.") else 1.0
            state[key] = (rng.standard_normal(shape) * gain * np.sqrt(2.0 / fan_in)).astype(np.float32)
    canonical = W.Canonical(W.GENERATOR, "basicsr", state, hp)
    paths = {}
    for framework, ext in (("torch", "pth"), ("paddle", "pdparams")):
        paths[framework] = os.path.join(folder, f"rrdbnet_nb{nb}.{ext}")
        if framework in installed_frameworks():
            cw.save_weights(canonical, framework, paths[framework])
    return paths


def installed_frameworks():
    import importlib.util
    return [m for m in ("torch", "paddle") if importlib.util.find_spec(m) is not None]


def weights_for(backend, paths):
    """Paddle backends read the .pdparams, the others the .pth (as a user of each would)."""
    return paths["paddle"] if backend.startswith("paddle") else paths["torch"]


# ---------------------------------------------------------------------------------------------------- workers
def speed_worker(args):
    """Load one backend through infer.load_upscaler, time ``repeats`` forwards after a warm-up -> JSON line."""
    import numpy as np
    from esrgan_twin.commands import infer
    with tempfile.TemporaryDirectory() as workdir:
        up = infer.load_upscaler(args.weights, args.backend, workdir=workdir, precision=args.precision,
                                  device="cpu")
        x = np.random.default_rng(0).random(args.shape, dtype=np.float32)
        t0 = time.perf_counter()
        up.forward(x)
        first = time.perf_counter() - t0
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            up.forward(x)
            times.append(time.perf_counter() - t0)
    print(json.dumps({"median": statistics.median(times), "first": first}))
    return 0


def rss_worker(args):
    """Run tools/infer.py as this process's only child -> JSON line with its peak RSS (ru_maxrss, KiB on Linux)."""
    import resource
    cmd = [sys.executable, os.path.join(ROOT, "tools", "infer.py"), *args.infer_args]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"rc": done.returncode, "rss_mib": peak_kib / 1024, "seconds": seconds,
                      "error": done.stderr.strip().splitlines()[-1] if done.returncode and done.stderr else ""}))
    return 0


def run_json(cmd, env):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"  failed: {' '.join(cmd[-6:])}: {tail}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


# --------------------------------------------------------------------------------------------------- the run
def measure_speed(args, weights, env):
    """(engine, nb) -> list of seconds per forward, engines round-robin within each round."""
    results = {}
    for _ in range(args.rounds):
        for nb in args.nb:
            for name in args.engines:
                backend, precision = ENGINES[name]
                cmd = [sys.executable, __file__, "--speed-worker", backend, "--precision", precision, "--weights",
                       weights_for(backend, weights[nb]), "--repeats", str(args.repeats),
                       "--shape", *map(str, (1, 3, args.size, args.size))]
                r = run_json(cmd, env)
                if r:
                    results.setdefault((name, nb), []).append(r["median"])
                    print(f"  {name:28s} nb={nb:<3d} {r['median']:.2f} s (first {r['first']:.2f} s)", file=sys.stderr)
    return results


def measure_rss(args, weights, folder, env):
    """engine -> (peak RSS MiB, seconds) of a tiled x4 tools/infer.py run."""
    import numpy as np
    import cv2
    image = os.path.join(folder, "input.png")
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (args.rss_size // 16, args.rss_size // 16, 3), dtype=np.uint8)
    cv2.imwrite(image, cv2.resize(small, (args.rss_size, args.rss_size), interpolation=cv2.INTER_CUBIC))
    out = {}
    for name in args.engines:
        backend, precision = ENGINES[name]
        out_dir = os.path.join(folder, f"out_{backend}_{precision}")  # infer.py never replaces an existing output
        infer_args = ["-i", image, "-o", out_dir, "-n", weights_for(backend, weights),
                      "--backend", backend, "--precision", precision, "--tile", str(args.tile)]
        r = run_json([sys.executable, __file__, "--rss-worker", *infer_args], env)
        if r and r["rc"] == 0:
            out[name] = (r["rss_mib"], r["seconds"])
            print(f"  {name:28s} peak RSS {r['rss_mib']:.0f} MiB in {r['seconds']:.0f} s", file=sys.stderr)
        elif r:
            print(f"  {name}: tools/infer.py failed: {r['error']}", file=sys.stderr)
    return out


def table(args, speed, rss, sgemm, macs):
    pixels = args.size * args.size
    lines = [f"RRDBNet x4 (nf {args.nf}, gc {args.gc}) at 1x3x{args.size}x{args.size}, random weights, "
             f"{os.cpu_count()} cores; medians of {args.rounds} round(s) x {args.repeats} forwards after a warm-up. "
             f"numpy sgemm (1024^3 float32) in this run: {statistics.median(sgemm):.1f} GFLOP/s "
             f"(samples {', '.join(f'{g:.1f}' for g in sgemm)}). MACs per input pixel: "
             + ", ".join(f"nb={nb} {macs[nb] / 1e6:.2f} M" for nb in args.nb) + ".", ""]
    head = ["engine"]
    for nb in args.nb:
        head += [f"nb={nb} s", f"nb={nb} GFLOP/s", f"nb={nb} / sgemm"]
    if rss:
        head += [f"peak RSS, {args.rss_size}² tile {args.tile}, nb={args.rss_nb} (MiB)", "that run (s)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in args.engines:
        row = [name]
        for nb in args.nb:
            ts = speed.get((name, nb))
            if not ts:
                row += ["failed", "", ""]
                continue
            t = statistics.median(ts)
            gflops = 2 * macs[nb] * pixels / t / 1e9
            row += [f"{t:.2f}", f"{gflops:.1f}", f"{gflops / statistics.median(sgemm):.2f}"]
        if rss:
            mib, sec = rss.get(name, (None, None))
            row += [f"{mib:.0f}" if mib else "failed", f"{sec:.0f}" if sec else ""]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--nb", type=int, nargs="+", default=[6, 23], help="RRDB block counts (default 6 23)")
    ap.add_argument("--nf", type=int, default=64)
    ap.add_argument("--gc", type=int, default=32)
    ap.add_argument("--size", type=int, default=128, help="input side for the speed runs (default 128)")
    ap.add_argument("--repeats", type=int, default=3, help="timed forwards per engine and round (default 3)")
    ap.add_argument("--rounds", type=int, default=1, help="round-robin rounds over the engines (default 1)")
    ap.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    ap.add_argument("--rss-size", type=int, default=1024, help="image side of the RSS run, 0 to skip (default 1024)")
    ap.add_argument("--rss-nb", type=int, default=1,
                    help="RRDB blocks of the RSS run's model (default 1: activations dominate; a block adds 2.9 MB)")
    ap.add_argument("--tile", type=int, default=256, help="--tile of the RSS run (default 256)")
    ap.add_argument("--speed-worker", dest="backend", help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="fp32", help=argparse.SUPPRESS)
    ap.add_argument("--shape", type=int, nargs=4, help=argparse.SUPPRESS)
    ap.add_argument("--rss-worker", dest="infer_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.infer_args is not None:
        return rss_worker(args)
    if args.backend:
        return speed_worker(args)
    check_mac_count()
    macs = {nb: conv_macs_per_pixel(nb, args.nf, args.gc) for nb in args.nb}
    with tempfile.TemporaryDirectory(prefix="esrgan-bench-") as folder:
        env = dict(os.environ, ESRGAN_TWIN_CACHE=os.path.join(folder, "cache"))
        weights = {nb: random_weights(folder, nb, args.nf, args.gc) for nb in set(args.nb) | {args.rss_nb}}
        sgemm = [sgemm_gflops()]
        speed = measure_speed(args, weights, env)
        sgemm.append(sgemm_gflops())
        rss = measure_rss(args, weights[args.rss_nb], folder, env) if args.rss_size else {}
        sgemm.append(sgemm_gflops())
    print(table(args, speed, rss, sgemm, macs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
