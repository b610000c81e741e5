"""A real 2-process torchrun (gloo on CPU) of tools/main.py --backend torch: DDP keeps both ranks' weights equal."""
import os
import re
import subprocess
import sys

import pytest
import torch
import yaml

from common_data.data.demo_data import make_demo_data
from helpers import paired_crop, paired_preprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_config(demo, out):
    pre = paired_preprocess(paired_crop(16))
    return dict(
        total_iters=3, output_dir=str(out), min_max='(0., 1.)',
        model={'name': 'RealESRNet', 'generator': {'name': 'RRDBNet', 'nf': 8, 'nb': 1, 'gc': 4},
               'pixel_criterion': {'name': 'L1Loss'}, 'l1_gt_usm': False},  # SRDataset pairs hold no gt_usm
        dataset={'train': {'name': 'SRDataset', 'gt_folder': f'{demo}/train', 'lq_folder': f'{demo}/train_X4',
                           'scale': 4, 'batch_size': 1, 'num_workers': 0, 'preprocess': pre}},
        lr_scheduler={'name': 'MultiStepDecay', 'learning_rate': 1e-3, 'milestones': [100]},
        optimizer={'name': 'Adam', 'net_names': ['generator'], 'beta1': 0.9, 'beta2': 0.99},
        log_config={'interval': 1}, snapshot_config={'interval': 3})


@pytest.mark.slow
def test_two_process_torchrun_ends_with_identical_weights_on_both_ranks(tmp_path):
    demo = tmp_path / 'demo'
    make_demo_data(demo, num_train=4, num_test=0, size=32)
    out = tmp_path / 'out'
    cfg_path = tmp_path / 'ddp_tiny.yaml'
    cfg_path.write_text(yaml.safe_dump(tiny_config(demo, out)))
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nnodes', '1', '--nproc_per_node', '2',
           os.path.join(ROOT, 'tests', 'rank_weights_main.py'), 'torch', '-c', str(cfg_path), '--backend', 'torch', '--seed', '3']
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]

    (run_dir,) = [os.path.join(out, d) for d in os.listdir(out)]
    assert re.findall(r'^\[[-0-9: ]+\] Iter: (\d)/3 lr', res.stdout, re.M) == ['1', '2', '3']  # rank 0 alone logs
    assert '2 process(es)' in res.stdout
    rank0 = torch.load(os.path.join(run_dir, 'rank0_final.pth'), weights_only=True)
    rank1 = torch.load(os.path.join(run_dir, 'rank1_final.pth'), weights_only=True)
    saved = torch.load(os.path.join(run_dir, 'iter_3_checkpoint.pth'), weights_only=True)
    assert saved['epoch'] == 3
    assert int(saved['optim']['state'][0]['step']) == 3
    for k, v in rank0['generator'].items():
        assert torch.equal(v, rank1['generator'][k]), k
        assert torch.equal(v, saved['generator'][k]), k
