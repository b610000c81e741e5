"""Wrap the framework-free common_data datasets in paddle.io.DataLoader, plus an endless iterator.

Training order and augmentation are a pure function of (seed, epoch, rank, position in the epoch): the batch
sampler shuffles with ``seed + epoch`` (numpy) and shards like a DistributedSampler, and every item seeds python
``random`` and numpy from its own seed before the dataset draws its crops / flips / degradations. So a resumed
run sees exactly the batches an uninterrupted run would, whatever the number of workers. (The permutation is
numpy's, not torch's, so the two backends see the same items in different orders.)
"""

import numpy as np
import paddle

from common_data.datasets import (CheckedLoader, build_dataset, collate, guarded_item, item_seed, loader_options,
                                  no_batches_error, seeded_item)
from common_data import workers

WORKER_PRELOAD = (__name__,)  # what the fork server imports once for all workers (common_data/workers.py)


class ItemSeededDataset(paddle.io.Dataset):
    """``dataset[(index, seed)]``: seed python ``random`` and numpy with ``seed``, then return ``dataset[index]``.

    A dataset with its own ``rng_for(index)`` Generator factory and no ``seed`` of its own (RealESRGANDataset)
    gets a Generator seeded with the item seed instead.
    """

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        index, seed = key
        return seeded_item(self.dataset, index, seed)


class GuardedDataset(paddle.io.Dataset):
    """``dataset[index]`` with a UserError carried in the item (``common_data.datasets.guarded_item``): raised in
    paddle's reader thread it would leave the main process waiting forever."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return guarded_item(self.dataset, index)


class SeededBatchSampler(paddle.io.BatchSampler):
    """Batches of ``(index, item_seed)``; shuffled by ``seed + epoch``, sharded over ranks, ``skip`` items dropped."""

    def __init__(self, num_items, batch_size, shuffle, drop_last, seed=0, rank=0, world=1):
        self.num_items, self.batch_size, self.shuffle, self.drop_last = num_items, batch_size, shuffle, drop_last
        self.seed, self.rank, self.world = int(seed or 0), rank, world
        self.per_rank = -(-num_items // world)
        self.epoch, self.skip = 1, 0

    def set_epoch(self, epoch, skip=0):
        self.epoch, self.skip = int(epoch), int(skip)

    def indices(self):
        order = (np.random.RandomState((self.seed + self.epoch) % 2 ** 32).permutation(self.num_items)
                 if self.shuffle else np.arange(self.num_items))
        order = np.concatenate([order, order[:self.per_rank * self.world - self.num_items]])
        return order[self.rank::self.world].tolist()

    def __iter__(self):
        batch = []
        for pos, index in enumerate(self.indices()):
            if pos < self.skip:
                continue
            batch.append((index, item_seed(self.seed, self.epoch, self.rank, pos)))
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        left = max(0, self.per_rank - self.skip)
        return left // self.batch_size if self.drop_last else -(-left // self.batch_size)


def dist_info(distributed):
    if distributed:
        return paddle.distributed.get_rank(), paddle.distributed.get_world_size()
    return 0, 1


def worker_options(opts):
    """Workers forked from a fresh fork server (paddle's loader takes the default start method), persistent."""
    if not opts["num_workers"]:
        return {}
    workers.worker_context(WORKER_PRELOAD, make_default=True)
    return dict(worker_init_fn=workers.init_worker, persistent_workers=workers.PERSISTENT)


def build_dataloader(cfg_block, is_train=True, distributed=False, seed=0, where=None):
    """``dataset.train`` / ``dataset.test`` block -> paddle.io.DataLoader yielding collated dict batches.

    Arrays arrive as paddle Tensors, strings (paths) as lists. Training loaders get ``batches_per_epoch`` and a
    resumable ``SeededBatchSampler`` (see the module docstring); with ``distributed`` each rank reads its own
    shard. Test loaders read in order, unseeded.
    """
    where = where or f"dataset.{'train' if is_train else 'test'}"
    dataset = build_dataset(cfg_block, where=where)
    opts = loader_options(cfg_block, is_train)
    common = dict(collate_fn=collate, num_workers=opts["num_workers"],
                  use_shared_memory=bool(cfg_block.get("use_shared_memory", True)), **worker_options(opts))
    if not is_train:
        loader = paddle.io.DataLoader(GuardedDataset(dataset), batch_size=opts["batch_size"], shuffle=False,
                                      drop_last=opts["drop_last"], **common)
        loader.batches_per_epoch = len(loader)
        return CheckedLoader(loader)
    rank, world = dist_info(distributed)
    sampler = SeededBatchSampler(len(dataset), opts["batch_size"], opts["shuffle"], opts["drop_last"], seed,
                                 rank, world)
    if len(sampler) == 0:
        raise no_batches_error(where, len(dataset), sampler.per_rank, opts["batch_size"])
    loader = paddle.io.DataLoader(ItemSeededDataset(dataset), batch_sampler=sampler, **common)
    loader.batches_per_epoch, loader.items_per_batch, loader.seeded_sampler = len(sampler), opts["batch_size"], sampler
    return loader
