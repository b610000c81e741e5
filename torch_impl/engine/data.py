"""Wrap the framework-free common_data datasets in torch.utils.data.DataLoader, plus an endless iterator.

Training order and augmentation are a pure function of (seed, epoch, rank, position in the epoch): the sampler
(torch's DistributedSampler, also with one process) shuffles with ``seed + epoch``, and every item seeds python
``random`` and numpy from its own seed before the dataset draws its crops / flips / degradations. So a resumed
run sees exactly the batches an uninterrupted run would, whatever the number of workers.
"""

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from common_data.datasets import (CheckedLoader, build_dataset, collate, guarded_item, item_seed, loader_options,
                                  no_batches_error, seeded_item)
from common_data import workers

WORKER_PRELOAD = (__name__,)  # what the fork server imports once for all workers (common_data/workers.py)


class ItemSeededDataset(Dataset):
    """``dataset[(index, seed)]``: seed python ``random`` and numpy with ``seed``, then return ``dataset[index]``.

    A dataset with its own ``rng_for(index)`` Generator factory and no ``seed`` of its own (RealESRGANDataset)
    gets a Generator seeded with the item seed instead.
    """

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        index, seed = key
        return seeded_item(self.dataset, index, seed)


class GuardedDataset(Dataset):
    """``dataset[index]`` with a UserError carried in the item (``common_data.datasets.guarded_item``): raised in
    a worker process it would reach the user wrapped in the worker's traceback."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return guarded_item(self.dataset, index)


class SeededSampler(Sampler):
    """Yields ``(index, item_seed)`` in the order of a DistributedSampler; ``skip`` drops the first items."""

    def __init__(self, base, seed, rank):
        self.base, self.seed, self.rank = base, int(seed), int(rank)
        self.epoch, self.skip = 1, 0

    def set_epoch(self, epoch, skip=0):
        self.epoch, self.skip = int(epoch), int(skip)
        self.base.set_epoch(self.epoch)

    def __iter__(self):
        for pos, index in enumerate(self.base):
            if pos >= self.skip:
                yield index, item_seed(self.seed, self.epoch, self.rank, pos)

    def __len__(self):
        return max(0, len(self.base) - self.skip)


def dist_info(distributed):
    if distributed and torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def worker_options(opts):
    """Workers forked from a fresh fork server (common_data/workers.py), persistent."""
    if not opts["num_workers"]:
        return {}
    return dict(multiprocessing_context=workers.worker_context(WORKER_PRELOAD), worker_init_fn=workers.init_worker,
                persistent_workers=workers.PERSISTENT)


def build_dataloader(cfg_block, is_train=True, distributed=False, seed=0, where=None):
    """``dataset.train`` / ``dataset.test`` block -> DataLoader yielding collated dict batches of numpy arrays.

    Training loaders get ``batches_per_epoch`` and a resumable ``SeededSampler`` (see the module docstring); with
    ``distributed`` each rank reads its own shard. Test loaders read in order, unseeded.
    """
    where = where or f"dataset.{'train' if is_train else 'test'}"
    dataset = build_dataset(cfg_block, where=where)
    opts = loader_options(cfg_block, is_train)
    common = dict(collate_fn=collate, num_workers=opts["num_workers"], batch_size=opts["batch_size"],
                  drop_last=opts["drop_last"], pin_memory=torch.cuda.is_available(), **worker_options(opts))
    if not is_train:
        loader = DataLoader(GuardedDataset(dataset), shuffle=False, **common)
        loader.batches_per_epoch = len(loader)
        return CheckedLoader(loader)
    rank, world = dist_info(distributed)
    base = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=opts["shuffle"], seed=int(seed or 0))
    per_rank = len(base)
    batches = per_rank // opts["batch_size"] if opts["drop_last"] else -(-per_rank // opts["batch_size"])
    if batches == 0:
        raise no_batches_error(where, len(dataset), per_rank, opts["batch_size"])
    sampler = SeededSampler(base, seed or 0, rank)
    loader = DataLoader(ItemSeededDataset(dataset), sampler=sampler, **common)
    loader.batches_per_epoch, loader.items_per_batch, loader.seeded_sampler = batches, opts["batch_size"], sampler
    return loader
