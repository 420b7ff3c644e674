"""The SEED config key: one seed for Python, NumPy and torch in every process, and a seed
per training sample derived from (seed, iteration, rank, position in the batch), so random
flips and multi-scale sizes do not depend on the number of workers and a resumed run draws
exactly what an uninterrupted one would have drawn."""
import functools
import logging
import os
import random

import numpy as np
import torch

from atss_core.utils.comm import get_world_size
from atss_core.utils.stop_signals import ignore_stop_signals_in_worker


def resolve_seed(configured):
    """``configured`` when >= 0; otherwise a random seed, the same in every process (rank 0's)."""
    if configured >= 0:
        return int(configured)
    seed = int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF
    if get_world_size() > 1:
        shared = torch.tensor([seed], dtype=torch.int64)
        if torch.distributed.get_backend() == "nccl":
            shared = shared.cuda()
        torch.distributed.broadcast(shared, src=0)
        seed = int(shared.item())
    logging.getLogger(__name__).info("SEED is negative: using the random seed %d (set SEED %d to repeat this run)",
                                     seed, seed)
    return seed


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def sample_seed(seed, iteration, rank, position):
    return int(np.random.SeedSequence([seed, iteration, rank, position]).generate_state(1)[0])


class SeededBatches(torch.utils.data.Sampler):
    """Wraps an iteration-based batch sampler: yields [(index, sample seed), ...] per batch."""

    def __init__(self, batch_sampler, seed, rank):
        self.batch_sampler = batch_sampler
        self.seed = seed
        self.rank = rank

    def __iter__(self):
        for iteration, batch in enumerate(self.batch_sampler, self.batch_sampler.start_iter + 1):
            yield [(index, sample_seed(self.seed, iteration, self.rank, position))
                   for position, index in enumerate(batch)]

    def __len__(self):
        return len(self.batch_sampler)


class SeededDataset(torch.utils.data.Dataset):
    """Reseeds Python, NumPy and torch with the sample's seed before loading it."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __getitem__(self, key):
        index, seed = key
        seed_everything(seed)
        return self.dataset[index]

    def __len__(self):
        return len(self.dataset)

    def __getattr__(self, name):  # get_img_info, categories, ... of the wrapped dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)


def _seed_worker(seed, rank, worker_id):
    ignore_stop_signals_in_worker()
    seed_everything(sample_seed(seed, 0, rank, worker_id))  # iteration 0: no batch has it


def worker_seeder(seed, rank):
    """worker_init_fn of training loaders: each worker starts from its own seed and leaves
    Ctrl-C and SIGTERM to the main process (picklable)."""
    return functools.partial(_seed_worker, seed, rank)
