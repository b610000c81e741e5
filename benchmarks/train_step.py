"""Paddle vs PyTorch RRDBNet training-step time, measured side by side (round-robin, medians).

Each engine runs in its own subprocess because Paddle's threading and oneDNN flags must be set before
``import paddle``. Prints a Markdown table of seconds per step, the ratio to PyTorch fp32, and GFLOP/s: a training
step counts 3 x the forward convolutions' FLOPs (forward, input gradient, weight gradient; 2 x MACs from the layer
shapes, benchmarks/inference.py), next to numpy's fp32 sgemm measured in the same run.

    python benchmarks/train_step.py --nb 6 23 --batch 4 --lq 32 --steps 5 --rounds 2
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_FLOPS_PER_MAC = 2 * 3  # a MAC is 2 FLOPs; backward computes input and weight gradients: ~2x the forward

# name -> (extra environment, worker arguments)
ENGINES = {
    "torch fp32": ({}, ["torch"]),
    "torch bf16 autocast + channels_last (precision bf16)": ({}, ["torch", "--bf16", "--channels-last"]),
    "torch bf16 autocast, NCHW": ({}, ["torch", "--bf16"]),
    "paddle eager": ({}, ["paddle"]),
    "paddle eager, MKL_DEBUG_CPU_TYPE=5": ({"MKL_DEBUG_CPU_TYPE": "5"}, ["paddle"]),
    "paddle static + oneDNN, plain ops (ESRGAN_TWIN_FUSED_OPS=0)": (
        {"FLAGS_use_mkldnn": "1", "ESRGAN_TWIN_FUSED_OPS": "0"}, ["paddle", "--static"]),
    "paddle static + oneDNN + fused bias/LeakyReLU op (to_static)": ({"FLAGS_use_mkldnn": "1"}, ["paddle", "--static"]),
    "paddle static, bf16 convs (to_static, precision bf16)": ({"FLAGS_use_mkldnn": "1"}, ["paddle", "--static", "--bf16"]),
}


def worker(args):
    import time

    import numpy as np
    from common_data.training.memory import keep_freed_memory
    keep_freed_memory()  # as both backends' run() do
    rng = np.random.default_rng(0)
    lq = rng.random((args.batch, 3, args.lq, args.lq), dtype=np.float32)
    gt = rng.random((args.batch, 3, args.lq * 4, args.lq * 4), dtype=np.float32)
    kw = dict(in_nc=3, out_nc=3, nf=64, nb=args.nb[0], gc=32)
    if args.engine == "torch":
        import torch
        torch.set_num_threads(args.threads)
        from torch_impl.archs.rrdbnet_arch import RRDBNet
        net = RRDBNet(**kw)
        x, y = torch.from_numpy(lq), torch.from_numpy(gt)
        if args.channels_last:  # as torch_impl's trainer does at precision bf16 on a CPU
            net = net.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), 2e-4, betas=(0.9, 0.99))

        def step():
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
                out = net(x)
            loss = (out.float() - y).abs().mean()
            loss.backward()
            opt.step()
    else:
        import paddle
        from paddle_impl.archs.rrdbnet_arch import RRDBNet
        if args.static:
            from paddle_impl.engine.static_step import StaticPixelStep
            sched = paddle.optimizer.lr.StepDecay(2e-4, step_size=10**9)
            runner = StaticPixelStep(lambda: RRDBNet(**kw), lambda: paddle.nn.L1Loss(),
                                     lambda p: paddle.optimizer.Adam(sched, parameters=p, beta1=0.9, beta2=0.99),
                                     lq.shape, gt.shape, bf16=args.bf16)
            runner.set_weights(RRDBNet(**kw).state_dict())

            def step():
                runner.step(lq, gt)
        else:
            net = RRDBNet(**kw)
            opt = paddle.optimizer.Adam(2e-4, parameters=net.parameters(), beta1=0.9, beta2=0.99)
            x, y = paddle.to_tensor(lq), paddle.to_tensor(gt)

            def step():
                loss = (net(x) - y).abs().mean()
                loss.backward()
                opt.step()
                opt.clear_grad()
    t0 = time.perf_counter()
    step()  # warm-up (compiles the static program)
    first = time.perf_counter() - t0
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps({"median": statistics.median(times), "first": first}))


def run_engine(name, nb, args):
    env_extra, wargs = ENGINES[name]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), **env_extra)
    cmd = [sys.executable, __file__, "--worker", *wargs, "--nb", str(nb), "--batch", str(args.batch),
           "--lq", str(args.lq), "--steps", str(args.steps), "--threads", str(args.threads)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        return None
    return json.loads(lines[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nb", type=int, nargs="+", default=[6, 23])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lq", type=int, default=32)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    ap.add_argument("--worker", dest="engine", choices=["torch", "paddle"], help=argparse.SUPPRESS)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--static", action="store_true")
    args = ap.parse_args(argv)
    if args.engine:
        return worker(args)
    from inference import conv_macs_per_pixel, sgemm_gflops  # benchmarks/inference.py (this script's folder)
    sgemm = [sgemm_gflops()]
    results, firsts = {}, {}
    for nb in args.nb:
        for _ in range(args.rounds):
            for name in args.engines:
                r = run_engine(name, nb, args)
                if r is not None:
                    results.setdefault((name, nb), []).append(r["median"])
                    firsts.setdefault((name, nb), []).append(r["first"])
        sgemm.append(sgemm_gflops())
    reference = statistics.median(sgemm)
    print(f"RRDBNet training step, batch {args.batch}, {args.lq}²→{args.lq * 4}², L1 + Adam, "
          f"{args.threads} threads, medians of {args.rounds} rounds × {args.steps} steps; numpy sgemm (1024³ "
          f"float32) in this run: {reference:.1f} GFLOP/s; GFLOP/s counts 3 × the forward convolutions\n")
    head = "| engine | " + " | ".join(f"nb={nb} s/step | vs torch | GFLOP/s | / sgemm | first step s"
                                      for nb in args.nb) + " |"
    print(head)
    print("|---" * (1 + 5 * len(args.nb)) + "|")
    for name in args.engines:
        row = [name]
        for nb in args.nb:
            ts = results.get((name, nb))
            ref = results.get(("torch fp32", nb))
            if not ts:
                row += ["failed", "", "", "", ""]
                continue
            t = statistics.median(ts)
            gflops = TRAIN_FLOPS_PER_MAC * conv_macs_per_pixel(nb) * args.batch * args.lq ** 2 / t / 1e9
            row += [f"{t:.2f}", f"{t / statistics.median(ref):.2f}" if ref else "", f"{gflops:.1f}",
                    f"{gflops / reference:.2f}", f"{statistics.median(firsts[(name, nb)]):.1f}"]
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
