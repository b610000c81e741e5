"""Peak memory of a shipped config's training step on a CPU, over the whole process tree (trainer + data workers).

The config runs as shipped (its net, patch size, data workers, degradations) on a synthetic set for a few
iterations, with the batch sizes and precisions asked for; validation and snapshots are off. The tree is sampled
every 0.1 s (benchmarks/peak_rss.py's summed PSS). The per-item slope between two batch sizes extrapolates the
config's own batch.

    python benchmarks/config_memory.py --config realesrnet_x4plus --batch 2 4 --precision bf16 fp32
"""
import argparse
import importlib.util
import os
import sys
import tempfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location("peak_rss", os.path.join(ROOT, "benchmarks", "peak_rss.py"))
peak_rss = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(peak_rss)


def write_config(folder, name, data, backend, batch, precision, iters, to_static=None):
    with open(os.path.join(ROOT, "configs", f"{name}.yaml"), encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    train = cfg["dataset"]["train"]
    for key in ("dataroot_gt", "gt_folder"):
        if key in train:
            train[key] = os.path.join(data, "train")
    if "lq_folder" in train:
        train["lq_folder"] = os.path.join(data, "train_X4")
    train["meta_info"] = None if "meta_info" in train else train.get("meta_info")
    train["batch_size"] = batch
    cfg["dataset"].pop("test", None)
    cfg.pop("validate", None)
    cfg["model"]["pretrain_network_g"] = None
    if to_static is not None:
        cfg["model"]["to_static"] = to_static
    cfg.update(total_iters=iters, backend=backend, precision=precision, enable_visualdl=False,
               output_dir=os.path.join(folder, "out"), log_config={"interval": 1, "visiual_interval": 10 ** 9},
               snapshot_config={"interval": 10 ** 9})
    sched = cfg.get("lr_scheduler") or {}
    if "periods" in sched:
        sched.update(periods=[iters], restart_weights=[1])
    path = os.path.join(folder, f"{name}_{backend}_{precision}_{batch}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg, f)
    return path, train


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="realesrnet_x4plus", help="a shipped config's name")
    ap.add_argument("--batch", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--precision", nargs="+", default=["bf16", "fp32"])
    ap.add_argument("--backends", nargs="+", default=["torch", "paddle"])
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--to-static", choices=("auto", "true", "false"), default=None,
                    help="override model.to_static (Paddle's static step against eager)")
    args = ap.parse_args(argv)
    from common_data.data.demo_data import make_demo_data
    mib = 2 ** 20
    with open(os.path.join(ROOT, "configs", f"{args.config}.yaml"), encoding="utf-8") as f:
        shipped = yaml.safe_load(f)
    full_batch = shipped["dataset"]["train"]["batch_size"]
    print(f"Config {args.config}.yaml as shipped (batch {full_batch}, its data workers), {args.iters} iterations; peak "
          f"summed PSS of the process tree in MiB, sampled every 0.1 s (a few % of noise), and the shipped batch "
          f"extrapolated from the per-item slope")
    print()
    print("| backend | precision | " + " | ".join(f"batch {b}" for b in args.batch) + f" | batch {full_batch} "
          "(extrapolated) |")
    print("|---|---|" + "---|" * (len(args.batch) + 1))
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        make_demo_data(data, num_train=8, num_test=1, seed=0, size=256)
        for backend in args.backends:
            for precision in args.precision:
                if backend == "paddle" and precision != "fp32":
                    continue  # Paddle 3.2 trains in fp32 on CPUs
                steps = [args.to_static] if args.to_static or backend != "paddle" else ["true", "false"]
                for step in steps:
                    to_static = {"true": True, "false": False}.get(step, step)
                    peaks = []
                    for batch in args.batch:
                        config, _ = write_config(tmp, args.config, data, backend, batch, precision, args.iters,
                                                 to_static)
                        peaks.append(peak_rss.peak_of(config, "forkserver", "persistent")[0])
                    slope = (peaks[-1] - peaks[0]) / (args.batch[-1] - args.batch[0]) if len(peaks) > 1 else 0
                    full = peaks[-1] + slope * (full_batch - args.batch[-1])
                    step_name = {True: "static", False: "eager"}.get(to_static, step)
                    label = f"paddle ({step_name} step)" if backend == "paddle" else backend
                    print(f"| {label} | {precision} | " + " | ".join(f"{p / mib:.0f}" for p in peaks) +
                          f" | {full / mib:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
