"""One training sampler for both backends: the same items, in the same order, with the same augmentation."""
import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler

from common_data.data.datasets import item_seed
from common_data.data.demo_data import make_demo_data
from common_data.data.sampling import SeededBatches
from helpers import paired_crop, paired_op, paired_preprocess


def flat(batches):
    return [pair for batch in batches for pair in batch]


def test_an_epoch_is_numpys_permutation_of_seed_plus_epoch_with_item_seeds_by_position():
    sampler = SeededBatches(10, 3, shuffle=True, drop_last=False, seed=5)
    sampler.set_epoch(2)
    expected = np.random.RandomState(7).permutation(10).tolist()
    assert [i for i, _ in flat(sampler)] == expected
    assert [s for _, s in flat(sampler)] == [item_seed(5, 2, 0, pos) for pos in range(10)]
    assert [len(b) for b in sampler] == [3, 3, 3, 1] and len(sampler) == 4


@pytest.mark.parametrize("num_items,world", [(10, 3), (9, 3), (4, 4), (5, 2)])
def test_ranks_are_dealt_out_like_torchs_distributed_sampler(num_items, world):
    for rank in range(world):
        sampler = SeededBatches(num_items, 1, shuffle=False, drop_last=False, rank=rank, world=world)
        torch_order = list(DistributedSampler(range(num_items), num_replicas=world, rank=rank, shuffle=False))
        assert [i for i, _ in flat(sampler)] == torch_order


def test_a_resumed_epoch_is_the_tail_of_the_full_one():
    sampler = SeededBatches(11, 2, shuffle=True, drop_last=True, seed=3)
    sampler.set_epoch(4)
    full = flat(sampler)
    sampler.set_epoch(4, skip=4)
    assert flat(sampler) == full[4:] and len(sampler) == 3


@pytest.fixture(scope="module")
def block(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("sampling"))
    make_demo_data(root, num_train=6, num_test=1, seed=0, size=64)
    return {"name": "SRDataset", "gt_folder": f"{root}/train", "lq_folder": f"{root}/train_X4", "scale": 4,
            "batch_size": 2, "num_workers": 0,
            "preprocess": paired_preprocess(paired_crop(32), paired_op("PairedRandomHorizontalFlip"))}


def first_batches(loader, count):
    out = []
    for epoch in (1, 2):
        loader.seeded_sampler.set_epoch(epoch)
        for batch in loader:
            lq = batch["lq"]
            out.append((np.asarray(lq.numpy() if hasattr(lq, "numpy") else lq), list(batch["lq_path"])))
    return out[:count]


def test_both_backends_read_the_same_items_in_the_same_order_with_the_same_crops(block):
    from paddle_impl.engine.data import build_dataloader as paddle_loader
    from torch_impl.engine.data import build_dataloader as torch_loader
    paddle_batches = first_batches(paddle_loader(dict(block), seed=9), 6)
    torch_batches = first_batches(torch_loader(dict(block), seed=9), 6)
    assert len(paddle_batches) == len(torch_batches) == 6  # two epochs of 3 batches
    for (p_lq, p_paths), (t_lq, t_paths) in zip(paddle_batches, torch_batches):
        assert p_paths == t_paths
        np.testing.assert_array_equal(p_lq, np.asarray(t_lq))
    epochs = [sum((paths for _, paths in paddle_batches[e:e + 3]), []) for e in (0, 3)]
    assert sorted(epochs[0]) == sorted(epochs[1]) and epochs[0] != epochs[1]  # each epoch shuffled anew
