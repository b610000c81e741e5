"""What the PyTorch trainer adds over a bare forward + backward + Adam step (same net, same batch shapes).

The trainer's iteration is timed between successive ``after_iteration`` calls (data loading, the model's step,
the lr scheduler, logging); the bare step runs on a fixed random batch. Both run in this process, interleaved
in rounds, and the ratio of medians is reported. Target: trainer <= 1.05 x bare.

    python benchmarks/trainer_overhead.py --nb 6 --iters 6 --rounds 2
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_cfg(data, out, nb, batch, iters):
    from common_data.config.loading import to_attrdict
    pipeline = [{"name": "SRPairedRandomCrop", "gt_patch_size": 128, "scale": 4, "keys": ["image", "image"]},
                {"name": "PairedRandomHorizontalFlip", "keys": ["image", "image"]},
                {"name": "Transpose", "keys": ["image", "image"]},
                {"name": "Normalize", "mean": [0.0, 0.0, 0.0], "std": [255.0, 255.0, 255.0], "keys": ["image", "image"]}]
    return to_attrdict({
        "total_iters": iters, "output_dir": out, "min_max": "(0., 1.)", "seed": 0, "config_name": "overhead",
        "model": {"name": "BaseSRModel", "generator": {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 64, "nb": nb},
                  "pixel_criterion": {"name": "L1Loss"}},
        "dataset": {"train": {"name": "SRDataset", "gt_folder": f"{data}/train", "lq_folder": f"{data}/train_X4",
                              "scale": 4, "batch_size": batch, "num_workers": 0,
                              "preprocess": [{"name": "LoadImageFromFile", "key": "lq"},
                                             {"name": "LoadImageFromFile", "key": "gt"},
                                             {"name": "Transforms", "input_keys": ["lq", "gt"], "pipeline": pipeline}]}},
        "lr_scheduler": {"name": "MultiStepDecay", "learning_rate": 2e-4, "milestones": [10 ** 9], "gamma": 0.5},
        "optimizer": {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
        "log_config": {"interval": 10 ** 9, "visiual_interval": 0},
        "snapshot_config": {"interval": 10 ** 9},
    })


def trainer_step_times(cfg):
    from torch_impl.engine.trainer import Trainer
    trainer = Trainer(cfg, None)
    stamps = []
    original = trainer.after_iteration

    def record(*args, **kwargs):
        original(*args, **kwargs)
        stamps.append(time.perf_counter())

    trainer.after_iteration = record
    try:
        trainer.train()
    finally:
        trainer.close()
    return [b - a for a, b in zip(stamps, stamps[1:])]


def bare_step_times(nb, batch, iters):
    import torch
    from torch_impl.archs.rrdbnet_arch import RRDBNet
    torch.manual_seed(0)
    net = RRDBNet(3, 3, 64, nb, 32)
    opt = torch.optim.Adam(net.parameters(), 2e-4, betas=(0.9, 0.99))
    lq, gt = torch.rand(batch, 3, 32, 32), torch.rand(batch, 3, 128, 128)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.l1_loss(net(lq), gt)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return times[1:]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nb", type=int, default=6)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
    from common_data.data.demo_data import make_demo_data
    trainer_times, bare_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        make_demo_data(os.path.join(tmp, "data"), num_train=8, num_test=1, seed=0, size=192)
        for _ in range(args.rounds):
            bare_times += bare_step_times(args.nb, args.batch, args.iters + 1)
            trainer_times += trainer_step_times(make_cfg(os.path.join(tmp, "data"), os.path.join(tmp, "out"),
                                                         args.nb, args.batch, args.iters + 1))
    bare, trainer = statistics.median(bare_times), statistics.median(trainer_times)
    print(f"| RRDBNet nb={args.nb}, batch {args.batch}, 32²→128² | bare step {bare:.3f} s | trainer step "
          f"{trainer:.3f} s | trainer / bare {trainer / bare:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
