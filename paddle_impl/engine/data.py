"""Wrap the framework-free common_data datasets in paddle.io.DataLoader, plus an endless iterator.

Training order and augmentation are a pure function of (seed, epoch, rank, position in the epoch): the batch
sampler is ``common_data.data.sampling.SeededBatches`` (torch_impl's too, so both backends read the same items in the
same order), and every item seeds python ``random`` and numpy from its own seed before the dataset draws its
crops / flips / degradations. So a resumed run sees exactly the batches an uninterrupted run would, whatever the
number of workers.
"""

import paddle

from common_data.data.datasets import (CheckedLoader, build_dataset, collate, guarded_item, loader_options,
                                  no_batches_error, seeded_item)
from common_data.data.sampling import SeededBatches
from common_data.data import workers as workers

WORKER_PRELOAD = (__name__,)  # what the fork server imports once for all workers (common_data/data/workers.py)


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
    """``dataset[index]`` with a UserError carried in the item (``common_data.data.datasets.guarded_item``): raised in
    paddle's reader thread it would leave the main process waiting forever."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        return guarded_item(self.dataset, index)


class SeededBatchSampler(SeededBatches, paddle.io.BatchSampler):
    """``common_data.data.sampling.SeededBatches`` as a paddle batch sampler."""


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
