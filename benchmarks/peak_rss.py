"""Peak memory of a whole training process tree (trainer + data workers), with 0 and 2 loader workers.

Each run is ``tools/main.py`` in a child process; its tree is sampled every 0.1 s and the peaks of the summed PSS
(proportional set size: a page shared by n processes counts 1/n in each, so the sum is what the tree really
takes) and of the summed RSS are reported, with the trainer's own peak RSS. Worker start-ups compared
(common_data/data/workers.py): the project's (``forkserver``, persistent), ``fork`` persistent, and ``fork`` with a
new set of workers each epoch (the frameworks' defaults, what the trainers did before).

    python benchmarks/peak_rss.py --nb 6 --iters 6
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = ("import runpy, sys; import common_data.data.workers as w; w.START_METHOD = sys.argv.pop(1); "
          "w.PERSISTENT = sys.argv.pop(1) == 'persistent'; sys.argv[0] = {main!r}; "
          "runpy.run_path({main!r}, run_name='__main__')")
VARIANTS = [(0, "forkserver", "persistent"), (2, "forkserver", "persistent"), (2, "fork", "persistent"),
            (2, "fork", "each epoch")]


def write_config(folder, data, backend, nb, iters, workers):
    augment = {"name": "Transforms", "input_keys": ["lq", "gt"], "pipeline": [
        {"name": "SRPairedRandomCrop", "gt_patch_size": 128, "scale": 4, "keys": ["image", "image"]},
        {"name": "Transpose", "keys": ["image", "image"]},
        {"name": "Normalize", "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0], "keys": ["image", "image"]}]}
    cfg = {
        "total_iters": iters, "output_dir": os.path.join(folder, "out"), "min_max": "(0., 1.)", "seed": 0,
        "backend": backend,
        "model": {"name": "BaseSRModel", "generator": {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 64,
                                                       "nb": nb}, "pixel_criterion": {"name": "L1Loss"}},
        "dataset": {"train": {"name": "SRDataset", "gt_folder": f"{data}/train", "lq_folder": f"{data}/train_X4",
                              "scale": 4, "batch_size": 4, "num_workers": workers,
                              "preprocess": [{"name": "LoadImageFromFile", "key": "lq"},
                                             {"name": "LoadImageFromFile", "key": "gt"}, augment]}},
        "lr_scheduler": {"name": "MultiStepDecay", "learning_rate": 2e-4, "milestones": [10 ** 9], "gamma": 0.5},
        "optimizer": {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
        "log_config": {"interval": 1, "visiual_interval": 10 ** 9},
        "snapshot_config": {"interval": 10 ** 9},
    }
    path = os.path.join(folder, f"rss_{backend}_{workers}.yaml")
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return path


def tree_memory(proc):
    """(summed PSS, summed RSS of the tree, the root's RSS) in bytes; processes that end meanwhile are skipped."""
    import psutil
    pss, rss, root_rss = 0, 0, 0
    for p in [proc] + proc.children(recursive=True):
        try:
            info = p.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        pss, rss = pss + info.pss, rss + info.rss
        root_rss = info.rss if p.pid == proc.pid else root_rss
    return pss, rss, root_rss


def peak_of(config, start_method, persistent):
    """Peaks (tree PSS, tree RSS, trainer RSS, process count) of one training run."""
    import psutil
    main = os.path.join(ROOT, "tools", "main.py")
    child = subprocess.Popen([sys.executable, "-c", LAUNCH.format(main=main), start_method, persistent, "-c",
                              config],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    proc = psutil.Process(child.pid)
    peaks, count = (0, 0, 0), 0
    while child.poll() is None:
        try:
            now = tree_memory(proc)
            count = max(count, 1 + len(proc.children(recursive=True)))
        except psutil.NoSuchProcess:
            break
        peaks = tuple(max(a, b) for a, b in zip(peaks, now))
        time.sleep(0.1)
    err = child.stderr.read().decode(errors="replace").strip().splitlines()
    child.wait()
    if child.returncode:
        raise SystemExit(f"training failed ({config}): {err[-1] if err else 'no output'}")
    return (*peaks, count)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nb", type=int, default=6)
    ap.add_argument("--iters", type=int, default=6, help="iterations (2 batches an epoch)")
    ap.add_argument("--backends", nargs="+", default=["torch", "paddle"])
    args = ap.parse_args(argv)
    from common_data.data.demo_data import make_demo_data
    mib = 2 ** 20
    print(f"RRDBNet nf 64 nb {args.nb}, batch 4, GT 128, {args.iters} iterations; peaks over the process tree "
          f"(trainer + workers + the fork server) of the summed PSS (what the tree really holds) and of the summed "
          f"RSS (shared pages counted in each process), and the trainer's own peak RSS, in MiB")
    print()
    print("| backend | loader workers | start method | workers started | processes | tree PSS | tree PSS / no "
          "workers | tree RSS | trainer RSS |")
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        make_demo_data(data, num_train=8, num_test=1, seed=0, size=192)
        for backend in args.backends:
            base = None
            for workers, method, persistent in VARIANTS:
                config = write_config(tmp, data, backend, args.nb, args.iters, workers)
                pss, rss, root, count = peak_of(config, method, persistent)
                base = base or pss
                start = f"{method} | {persistent}" if workers else "- | -"
                print(f"| {backend} | {workers} | {start} | {count} | {pss / mib:.0f} | {pss / base:.2f} | "
                      f"{rss / mib:.0f} | {root / mib:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
