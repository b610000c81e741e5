"""A real 2-process ``paddle.distributed.launch`` (gloo on CPU) of tools/main.py: DataParallel keeps the ranks equal.

The ranks read different shards of the data, so without the gradient all-reduce their weights would part after
the first step (a one-process run of each shard gives different weights). The GAN model is the hard case for
paddle's reducer: the discriminator runs twice before one backward and is frozen during the generator's step.
"""
import os
import re
import subprocess
import sys

import numpy as np
import paddle
import pytest
import yaml

from common_data.data.demo_data import make_demo_data
from helpers import paired_preprocess
from paddle_impl.engine.checkpoint import save_weights
from paddle_impl.models import build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_G = {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4}
MODEL = {"name": "RealESRGAN", "generator": TINY_G,
         "discriminator": {"name": "UNetDiscriminatorSN", "num_in_ch": 3, "num_feat": 4},
         "pixel_criterion": {"name": "L1Loss"},
         "gan_criterion": {"name": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.1}}


def tiny_config(demo, out):
    pre_test = paired_preprocess()
    return dict(
        total_iters=3, output_dir=str(out), min_max="(0., 1.)", model=MODEL,
        dataset={"train": {"name": "RealESRGANDataset", "dataroot_gt": f"{demo}/train", "gt_size": 32,
                           "crop_pad_size": 48, "preset": "resize_only", "batch_size": 1, "num_workers": 0},
                 "test": {"name": "SRDataset", "gt_folder": f"{demo}/test", "lq_folder": f"{demo}/test_X4",
                          "scale": 4, "preprocess": pre_test}},
        lr_scheduler={"name": "MultiStepDecay", "learning_rate": 1e-3, "milestones": [100]},
        optimizer={"optimG": {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
                   "optimD": {"name": "Adam", "net_names": ["discriminator"], "beta1": 0.9, "beta2": 0.99}},
        validate={"interval": 3, "metrics": {"psnr": {"name": "PSNR", "crop_border": 4, "test_y_channel": False}}},
        log_config={"interval": 1}, snapshot_config={"interval": 3})


def arrays(state):
    return {net: {k: v.numpy() for k, v in sd.items()} for net, sd in state.items()}


@pytest.mark.slow
def test_two_process_launch_ends_with_identical_trained_weights_on_both_ranks(tmp_path):
    demo = tmp_path / "demo"
    make_demo_data(str(demo), num_train=4, num_test=1, size=48)
    out = tmp_path / "out"
    cfg_path = tmp_path / "dp_tiny.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config(demo, out)))
    paddle.seed(11)
    init = build_model(MODEL)  # both ranks start from these weights (--load)
    init_path = str(tmp_path / "init.pdparams")
    save_weights(init_path, {name: net.state_dict() for name, net in init.nets.items()})

    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
           "--log_dir", str(tmp_path / "launch_log"), os.path.join(ROOT, "tests", "rank_weights_main.py"), "paddle",
           "-c", str(cfg_path),
           "--seed", "3", "--load", init_path]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    worker1 = (tmp_path / "launch_log" / "workerlog.1").read_text()
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:] + worker1[-2000:]

    (run_dir,) = [os.path.join(out, d) for d in os.listdir(out)]
    log = open(os.path.join(run_dir, "log.txt"), encoding="utf-8").read()
    assert "2 process(es)" in log
    assert re.findall(r"Iter: (\d)/3 lr", log) == ["1", "2", "3"]  # rank 0 alone writes the log
    assert "Iter: 3 Metric psnr:" in log
    assert "Iter: " not in worker1  # rank 1 logs nothing

    rank0 = arrays(paddle.load(os.path.join(run_dir, "rank0_final.pdparams")))
    rank1 = arrays(paddle.load(os.path.join(run_dir, "rank1_final.pdparams")))
    saved = arrays({k: v for k, v in paddle.load(os.path.join(run_dir, "iter_3_checkpoint.pdparams")).items()
                    if k in ("generator", "discriminator")})
    start = arrays({name: net.state_dict() for name, net in init.nets.items()})
    assert set(rank0) == {"generator", "discriminator"}
    for net, weights in rank0.items():
        for key, value in weights.items():
            np.testing.assert_array_equal(value, rank1[net][key], err_msg=f"{net}.{key}")
            np.testing.assert_array_equal(value, saved[net][key], err_msg=f"{net}.{key}")
        assert any(not np.array_equal(v, start[net][k]) for k, v in weights.items()), f"{net} did not train"
