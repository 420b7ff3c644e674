"""Repeat-factor sampling for long-tailed data (LVIS, Gupta et al. 2019; detectron2's names).

An image's repeat factor is that of its rarest category, r(c) = max(1, sqrt(t / f(c))), f(c)
the fraction of training images that contain c and t DATALOADER.REPEAT_THRESHOLD. Each epoch an
image appears floor(r) times plus once more with probability r - floor(r), drawn from
(seed, epoch) like the shuffle, so every process builds the same epoch and a resumed run replays it.
"""
import math

import torch
from torch.utils.data import Sampler


def category_repeat_factors(labels_per_image, threshold):
    """{label: r(label)} over the images' label tensors."""
    counts = {}
    for labels in labels_per_image:
        for label in set(labels.tolist()):
            counts[label] = counts.get(label, 0) + 1
    num_images = max(len(labels_per_image), 1)
    return {label: max(1.0, math.sqrt(threshold / (count / num_images))) for label, count in counts.items()}


def repeat_factors(labels_per_image, threshold):
    """[N] float64 repeat factor per image: its rarest category's (1 for an image without objects)."""
    per_category = category_repeat_factors(labels_per_image, threshold)
    return torch.tensor([max((per_category[label] for label in set(labels.tolist())), default=1.0)
                         for labels in labels_per_image], dtype=torch.float64)


class RepeatFactorTrainingSampler(Sampler):
    """Indices of one epoch for process ``rank`` of ``num_replicas``: every image repeated by its
    stochastically rounded factor, shuffled, padded to a multiple of the processes and dealt out."""

    def __init__(self, factors, num_replicas=1, rank=0, seed=0):
        if not 0 <= rank < num_replicas:
            raise ValueError("rank {} is outside [0, {})".format(rank, num_replicas))
        self.factors = torch.as_tensor(factors, dtype=torch.float64)
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def epoch_indices(self):
        """All processes' indices of this epoch, before the split."""
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        whole = self.factors.floor()
        repeats = whole + (torch.rand(len(self.factors), generator=g, dtype=torch.float64) < self.factors - whole)
        indices = torch.repeat_interleave(torch.arange(len(self.factors)), repeats.long())
        return indices[torch.randperm(len(indices), generator=g)].tolist()

    def __iter__(self):
        indices = self.epoch_indices()
        total = int(math.ceil(len(indices) / self.num_replicas)) * self.num_replicas
        indices += indices[: total - len(indices)]
        return iter(indices[self.rank:total:self.num_replicas])

    def __len__(self):
        return int(math.ceil(len(self.epoch_indices()) / self.num_replicas))
