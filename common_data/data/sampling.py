"""The training sampler both backends' loaders (and tools/parity.py) use: the same items in the same order.

An epoch's order is ``RandomState(seed + epoch)``'s permutation of the items (when shuffling), padded with its
first items to a multiple of the number of ranks and dealt out like a DistributedSampler (rank r takes positions
r, r + world, ...). Each item travels as ``(index, item_seed(seed, epoch, rank, position))``; the dataset seeds its
random draws (crops, flips, degradations) from that seed, so training data is a pure function of the config's seed,
and a resumed run (``set_epoch(epoch, skip)``) sees exactly the batches an uninterrupted one would.
"""
import numpy as np

from common_data.data.datasets import item_seed


class SeededBatches:
    """Batches of ``(index, item_seed)``; shuffled by ``seed + epoch``, sharded over ranks, ``skip`` items dropped.

    Backends subclass it together with their framework's batch sampler class (nothing framework-specific here).
    """

    def __init__(self, num_items, batch_size, shuffle, drop_last, seed=0, rank=0, world=1):
        self.num_items, self.batch_size, self.shuffle, self.drop_last = num_items, batch_size, shuffle, drop_last
        self.seed, self.rank, self.world = int(seed or 0), int(rank), int(world)
        self.per_rank = -(-num_items // self.world)
        self.epoch, self.skip = 1, 0

    def set_epoch(self, epoch, skip=0):
        """Read epoch ``epoch`` (from 1), leaving out its first ``skip`` items of this rank."""
        self.epoch, self.skip = int(epoch), int(skip)

    def indices(self):
        """This rank's item indices of the current epoch, in order."""
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
