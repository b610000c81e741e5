"""A fixed seed fixes the data and the training: the same batches and the same losses, run after run, per backend.

RealESRGANDataset without a ``seed`` of its own draws from ``rng_for(index)``; the engines' loaders hand it a
Generator seeded from the loader's per-item seed, so it follows the run's seed like the paired dataset does.
"""
import importlib
import os
import types

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from common_data.config.loading import load_config  # noqa: E402
from common_data.data.datasets import IterLoader  # noqa: E402
from common_data.data.demo_data import make_demo_data  # noqa: E402
from helpers import paired_crop, paired_op, paired_preprocess  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ["paddle"] + (["torch"] if os.path.isdir(os.path.join(ROOT, "torch_impl", "engine")) else [])
TINY_G = {"name": "RRDBNet", "in_nc": 3, "out_nc": 3, "nf": 8, "nb": 1, "gc": 4}
NUM_BATCHES = 5
NUM_ITERS = 20


def engine(backend, module):
    pytest.importorskip(backend)
    return importlib.import_module(f"{backend}_impl.engine.{module}")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    make_demo_data(str(root), num_train=4, num_test=0, seed=0, size=48)
    return str(root)


def paired_block(demo):
    pre = paired_preprocess(paired_crop(16), paired_op("PairedRandomHorizontalFlip"),
                            paired_op("PairedRandomVerticalFlip"), paired_op("PairedRandomTransposeHW"))
    return {"name": "SRDataset", "gt_folder": f"{demo}/train", "lq_folder": f"{demo}/train_X4", "scale": 4,
            "batch_size": 2, "num_workers": 0, "preprocess": pre}


def realesrgan_block(demo):
    # no ``seed`` in the block: the randomness must come from the loader's item seeds
    return {"name": "RealESRGANDataset", "dataroot_gt": f"{demo}/train", "gt_size": 32, "crop_pad_size": 48,
            "preset": "anime_light", "batch_size": 2, "num_workers": 0}


BLOCKS = {"SRDataset": paired_block, "RealESRGANDataset": realesrgan_block}


def as_numpy(value):
    if isinstance(value, (list, tuple)):
        return list(value)
    return value.numpy() if hasattr(value, "numpy") else np.asarray(value)


def first_batches(backend, block, seed, n=NUM_BATCHES):
    data = engine(backend, "data")
    loader = IterLoader(data.build_dataloader(block, is_train=True, seed=seed))
    return [{k: as_numpy(v) for k, v in next(loader).items()} for _ in range(n)]


def assert_same_batches(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.keys() == y.keys()
        for key in x:
            if isinstance(x[key], list):
                assert x[key] == y[key], f"batch {i} {key}"
            else:
                np.testing.assert_array_equal(x[key], y[key], err_msg=f"batch {i} {key}")


def differs(a, b):
    return any(not np.array_equal(x["gt"], y["gt"]) or not np.array_equal(x["lq"], y["lq"]) for x, y in zip(a, b))


@pytest.mark.parametrize("dataset", list(BLOCKS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_fixed_seed_gives_the_same_first_batches(backend, dataset, demo):
    block = BLOCKS[dataset](demo)
    once = first_batches(backend, block, seed=7)
    again = first_batches(backend, block, seed=7)
    assert len(once) == NUM_BATCHES and once[0]["gt"].shape[0] == 2
    assert_same_batches(once, again)
    assert differs(once, first_batches(backend, block, seed=8))  # the seed is what fixes them


def write_training_config(tmp_path, demo, name):
    cfg = {"total_iters": NUM_ITERS, "output_dir": str(tmp_path / "out"), "min_max": "(0., 1.)",
           "model": {"name": "RealESRNet", "generator": TINY_G, "pixel_criterion": {"name": "L1Loss"}},
           "dataset": {"train": realesrgan_block(demo)},
           "lr_scheduler": {"name": "MultiStepDecay", "learning_rate": 1e-3, "milestones": [1000]},
           "optimizer": {"name": "Adam", "net_names": ["generator"], "beta1": 0.9, "beta2": 0.99},
           "log_config": {"interval": NUM_ITERS}, "snapshot_config": {"interval": NUM_ITERS}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def train_losses(backend, path, seed):
    trainer = engine(backend, "trainer").Trainer(load_config(path), types.SimpleNamespace(seed=seed))
    try:
        history = trainer.train()
    finally:
        trainer.close()
    return [h["l_pix"] for h in history]


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_training_runs_with_a_fixed_seed_give_the_same_losses(backend, tmp_path, demo):
    path = write_training_config(tmp_path, demo, f"determinism_{backend}")
    first = train_losses(backend, path, seed=5)
    second = train_losses(backend, path, seed=5)
    assert len(first) == NUM_ITERS and all(np.isfinite(first))
    assert first == second
    assert train_losses(backend, path, seed=6)[:3] != first[:3]  # a different seed: different data and init
