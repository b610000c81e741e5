"""Dataset registry, building a dataset from a ``dataset.<phase>`` block, loader options and collation.

A ``dataset.train`` block mixes dataset arguments with PaddleGAN's loader keys (``batch_size``,
``num_workers``...): ``build_dataset`` drops the loader keys, ``loader_options`` reads them.
"""
import importlib
import os
import random
import threading

import numpy as np

from common_data.errors import ConfigError, DataError, UserError
from common_data.registry import Registry

DATASETS = Registry("dataset")

# Keys of a dataset block that configure the loader, not the dataset (PaddleGAN's build_dataloader + ours).
LOADER_KEYS = ("batch_size", "num_workers", "use_shared_memory", "shuffle", "drop_last", "pin_memory",
               "persistent_workers", "prefetch_factor")

# A batch holding this key carries the one-line message of a UserError raised while reading an item.
LOAD_ERROR_KEY = "load_error"

# Modules whose import registers datasets; imported on first use so that importing this module stays cheap.
DATASET_MODULES = ("sr_dataset", "realesrgan_dataset")


def _register_datasets():
    for name in DATASET_MODULES:
        try:
            importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__package__}.{name}":
                raise


def build_dataset(cfg_block, where="dataset.train"):
    """Build the dataset named by ``cfg_block['name']`` from the block's non-loader keys."""
    if not isinstance(cfg_block, dict):
        raise ConfigError(f"{where}: expected a mapping with a 'name:' key, got {cfg_block!r}")
    _register_datasets()
    cfg = {k: v for k, v in cfg_block.items() if k not in LOADER_KEYS}
    return DATASETS.build(cfg, where=where, hints=LOADER_KEYS)


def loader_options(cfg_block, is_train):
    """``dict(batch_size, num_workers, shuffle, drop_last)``; shuffle and drop_last default to ``is_train``."""
    cfg_block = cfg_block or {}
    opts = {"batch_size": cfg_block.get("batch_size", 1), "num_workers": cfg_block.get("num_workers", 0),
            "shuffle": cfg_block.get("shuffle", bool(is_train)), "drop_last": cfg_block.get("drop_last", bool(is_train))}
    for key, low in (("batch_size", 1), ("num_workers", 0)):
        v = opts[key]
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ConfigError(f"dataset.{'train' if is_train else 'test'}.{key} must be an integer >= {low}, got {v!r}")
    for key in ("shuffle", "drop_last"):
        if not isinstance(opts[key], bool):
            raise ConfigError(f"dataset.{'train' if is_train else 'test'}.{key} must be true or false, got {opts[key]!r}")
    return opts


def guarded_item(dataset, index):
    """``dataset[index]``, or ``{LOAD_ERROR_KEY: message}`` when it raises a UserError.

    Loader threads and worker processes turn an exception into a hang (paddle's single-process reader thread) or
    into a message wrapped in a worker traceback; the message travels in the batch instead and ``check_batch``
    raises it in the main process.
    """
    try:
        return dataset[index]
    except UserError as e:
        return {LOAD_ERROR_KEY: str(e)}


def item_seed(seed, epoch, rank, position):
    """A 32-bit seed for one item of one epoch on one rank (training order is a pure function of these)."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(rank), int(position)]).generate_state(1)[0])


_GLOBAL_RNG_LOCK = threading.Lock()


def _new_lock_in_child():
    """A forked loader worker must not inherit the lock held by another thread of its parent."""
    global _GLOBAL_RNG_LOCK
    _GLOBAL_RNG_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_in_child)


def seeded_item(dataset, index, seed):
    """``guarded_item(dataset, index)`` after seeding python ``random`` and numpy with ``seed``.

    A dataset drawing from its own Generator factory ``rng_for(index)`` and without a ``seed`` of its own
    (RealESRGANDataset) gets a Generator seeded with ``seed`` instead, so every item is reproducible. The global
    generators are shared by the threads of a process (paddle's single-process loader reads in a thread), so
    seeding and reading hold a lock: another loader's thread cannot reseed them midway through an item.
    """
    with _GLOBAL_RNG_LOCK:
        random.seed(seed)
        np.random.seed(seed)
        if hasattr(dataset, "rng_for") and getattr(dataset, "seed", None) is None:
            dataset.rng_for = lambda _index, _seed=seed: np.random.default_rng(_seed)
        return guarded_item(dataset, index)


class CheckedLoader:
    """Iterate a framework DataLoader, raising a load error carried in a batch (``check_batch``) in this process."""

    def __init__(self, loader):
        self.loader = loader
        self.batches_per_epoch = loader.batches_per_epoch

    def __iter__(self):
        return (check_batch(batch) for batch in self.loader)

    def __len__(self):
        return len(self.loader)


def check_batch(batch):
    """Return ``batch``; a batch carrying a load error (see ``guarded_item``) -> DataError with its message."""
    if isinstance(batch, dict) and LOAD_ERROR_KEY in batch:
        message = batch[LOAD_ERROR_KEY]
        raise DataError(message[0] if isinstance(message, (list, tuple)) else message)
    return batch


def collate(items):
    """Batch a list of dataset items: arrays and numbers are stacked, strings and the rest kept as lists.

    A batch with failed items (``guarded_item``) is ``{LOAD_ERROR_KEY: message of the first, 'failed_items':
    array([count])}`` (the array because paddle's loader takes a batch without one for the end of the data).
    """
    failed = [it[LOAD_ERROR_KEY] for it in items if isinstance(it, dict) and LOAD_ERROR_KEY in it]
    if failed:
        return {LOAD_ERROR_KEY: failed[0], "failed_items": np.array([len(failed)])}
    first = items[0]
    if isinstance(first, dict):
        return {k: collate([it[k] for it in items]) for k in first}
    if isinstance(first, np.ndarray):
        return np.stack(items)
    if isinstance(first, (bool, int, float, np.number, np.bool_)):
        return np.array(items)
    return list(items)


def no_batches_error(where, num_items, per_rank, batch_size):
    """The DataError of a training loader that would yield no batch (too few items for ``drop_last``)."""
    return DataError(f"{where}: {num_items} item(s) ({per_rank} per process) is less than batch_size {batch_size} "
                     f"with drop_last; lower {where}.batch_size or add data")


class IterLoader:
    """Endless iterator over a training loader; ``epoch`` counts passes (starting at 1).

    The loader (either backend's ``build_dataloader``) has ``batches_per_epoch``, ``items_per_batch`` and a
    ``seeded_sampler`` with ``set_epoch(epoch, skip_items)``. ``start_batch`` (batches already consumed, e.g.
    iterations x accumulate_steps when resuming) positions it mid-epoch without reading the skipped items.
    """

    def __init__(self, loader, start_batch=0):
        self.loader = loader
        per_epoch = loader.batches_per_epoch
        self.epoch = 1 + start_batch // per_epoch
        self._iter = self._new_iter(skip_batches=start_batch % per_epoch)

    def _new_iter(self, skip_batches=0):
        sampler = getattr(self.loader, "seeded_sampler", None)
        if sampler is not None:
            sampler.set_epoch(self.epoch, skip_batches * self.loader.items_per_batch)
        return iter(self.loader)

    def __next__(self):
        try:
            return check_batch(next(self._iter))
        except StopIteration:
            self.epoch += 1
            self._iter = self._new_iter()
            return check_batch(next(self._iter))

    def __iter__(self):
        return self

    def __len__(self):
        return self.loader.batches_per_epoch
