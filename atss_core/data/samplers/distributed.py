"""A seeded sampler that gives each process its own slice of one shared permutation."""
import math

import torch
from torch.utils.data import Sampler


class DistributedSampler(Sampler):
    """Shuffles with a generator seeded by (seed, epoch), so every process draws the same
    permutation and a resumed run replays the same order; pads to a multiple of the number
    of processes and hands out every ``num_replicas``-th index starting at ``rank``.
    Works without torch.distributed (num_replicas=1, rank=0)."""

    def __init__(self, dataset, num_replicas=1, rank=0, shuffle=True, seed=0):
        if not 0 <= rank < num_replicas:
            raise ValueError("rank {} is outside [0, {})".format(rank, num_replicas))
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.num_samples = int(math.ceil(len(dataset) / num_replicas))
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.seed + self.epoch)
            indices = torch.randperm(len(self.dataset), generator=g).tolist()
        else:
            indices = list(range(len(self.dataset)))
        indices += indices[: self.total_size - len(indices)]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        self.epoch = epoch
