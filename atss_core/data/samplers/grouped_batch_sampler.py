"""Batches whose images all share a group (aspect ratio: portrait vs landscape), so that
padding to the largest image in a batch wastes little."""
import itertools

import torch
from torch.utils.data.sampler import BatchSampler, Sampler


class GroupedBatchSampler(BatchSampler):
    """Splits the sampler's order into per-group batches of ``batch_size`` and emits them
    in the order of their first element, which keeps the sampler's randomness. With
    ``drop_uneven`` incomplete batches are dropped. An index the sampler repeats counts once,
    at its last position (the official rule, for the padding); with ``keep_repeats`` (the
    repeat-factor sampler) every occurrence is batched."""

    def __init__(self, sampler, group_ids, batch_size, drop_uneven=False, keep_repeats=False):
        if not isinstance(sampler, Sampler):
            raise ValueError("sampler should be a torch.utils.data.Sampler, got {}".format(type(sampler).__name__))
        self.sampler = sampler
        self.group_ids = torch.as_tensor(group_ids)
        if self.group_ids.dim() != 1:
            raise ValueError("group_ids must be one id per dataset item")
        self.batch_size = batch_size
        self.drop_uneven = drop_uneven
        self.groups = torch.unique(self.group_ids).sort(0)[0]
        self.keep_repeats = keep_repeats

    def _batches_of_every_occurrence(self, sampled_ids):
        groups = self.group_ids[sampled_ids]
        batches = []
        for group in self.groups:
            batches.extend(torch.nonzero(groups == group).squeeze(1).split(self.batch_size))  # positions
        batches.sort(key=lambda positions: int(positions[0]))
        return [sampled_ids[positions].tolist() for positions in batches]

    def _prepare_batches(self):
        sampled_ids = torch.as_tensor(list(self.sampler), dtype=torch.int64)
        if sampled_ids.numel() == 0:
            return []
        if self.keep_repeats:
            batches = self._batches_of_every_occurrence(sampled_ids)
            return [b for b in batches if len(b) == self.batch_size] if self.drop_uneven else batches
        # position of each dataset index in the sampled order (-1: not sampled);
        # a padded (repeated) index keeps its last position, as the official code does
        order = torch.full((len(self.group_ids),), -1, dtype=torch.int64)
        order[sampled_ids] = torch.arange(len(sampled_ids))
        sampled = order >= 0
        batches = []
        for group in self.groups:
            members = torch.nonzero((self.group_ids == group) & sampled).squeeze(1)
            members = members[order[members].sort()[1]]  # in sampled order
            batches.extend(members.split(self.batch_size))
        first_position = torch.as_tensor([int(order[b[0]]) for b in batches])
        batches = [batches[i].tolist() for i in first_position.sort()[1].tolist()]
        if self.drop_uneven:
            batches = [b for b in batches if len(b) == self.batch_size]
        return batches

    def __iter__(self):
        return iter(self._prepare_batches())

    def __len__(self):
        return len(self._prepare_batches())
