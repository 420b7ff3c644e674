import math

import pytest
import torch

from atss_core.data.build import make_data_loader
from atss_core.data.collate_batch import BatchCollator
from atss_core.data.samplers import (DistributedSampler, GroupedBatchSampler, IterationBasedBatchSampler,
                                     RepeatFactorTrainingSampler, repeat_factors)

from .test_build import loader_cfg


def test_distributed_sampler_partitions_one_seeded_permutation():
    data = list(range(10))
    parts = [list(DistributedSampler(data, num_replicas=3, rank=r, seed=7)) for r in range(3)]
    assert all(len(p) == 4 for p in parts)
    assert set(sum(parts, [])) == set(data)  # padded by repeating, nothing lost
    # one permutation shared by the ranks (seed 7), padded with its first items to 12, rank r
    # taking every third from r
    permutation = torch.randperm(10, generator=torch.Generator().manual_seed(7)).tolist()
    padded = permutation + permutation[:2]
    assert parts == [padded[r::3] for r in range(3)]
    again = DistributedSampler(data, num_replicas=3, rank=1, seed=7)
    assert list(again) == parts[1]
    again.set_epoch(1)
    assert list(again) != parts[1]
    assert list(DistributedSampler(data, shuffle=False)) == data


def test_grouped_batches_are_homogeneous_and_cover_the_order():
    sampler = DistributedSampler(list(range(11)), seed=3)
    group_ids = [0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 0]
    batches = list(GroupedBatchSampler(sampler, group_ids, batch_size=2))
    assert sorted(sum(batches, [])) == list(range(11))
    assert all(len({group_ids[i] for i in b}) == 1 for b in batches)
    order = list(sampler)
    firsts = [order.index(b[0]) for b in batches]
    assert firsts == sorted(firsts)  # batches follow the sampler's order
    dropped = list(GroupedBatchSampler(sampler, group_ids, batch_size=2, drop_uneven=True))
    assert all(len(b) == 2 for b in dropped) and len(dropped) == 2 + 3  # 5 items of group 0, 6 of group 1


def make_iterator(start_iter, num_iterations=17):
    sampler = DistributedSampler(list(range(9)), seed=1)
    batch_sampler = GroupedBatchSampler(sampler, [i % 2 for i in range(9)], batch_size=2)
    return IterationBasedBatchSampler(batch_sampler, num_iterations, start_iter=start_iter)


def test_iteration_based_sampler_runs_epochs_with_new_orders():
    batches = list(make_iterator(0))
    assert len(batches) == 17 == len(make_iterator(0))
    epoch_batches = 6  # 5 even + 4 odd items in batches of 2: 3 + 2 + (1 incomplete each) = 6
    assert batches[:epoch_batches] != batches[epoch_batches:2 * epoch_batches]


def test_resume_sees_the_same_batches_as_an_uninterrupted_run():
    full = list(make_iterator(0))
    for k in (0, 4, 6, 11, 16):
        assert list(make_iterator(k)) == full[k:]


def test_collator_pads_and_keeps_targets_and_indices():
    batch = [(torch.ones(3, 5, 7), "t0", 4), (torch.ones(3, 9, 3), "t1", 8)]
    images, targets, indices = BatchCollator(size_divisible=4)(batch)
    assert images.tensors.shape == (2, 3, 12, 8) and images.image_sizes == [(5, 7), (9, 3)]
    assert targets == ("t0", "t1") and indices == (4, 8)


def test_repeat_factors_follow_the_lvis_formula_on_a_100_to_1_imbalance():
    common, rare = 1000, 10
    labels = [torch.tensor([1])] * common + [torch.tensor([1, 2])] * rare + [torch.tensor([], dtype=torch.int64)]
    threshold = 0.1
    factors = repeat_factors(labels, threshold)
    f_rare = rare / len(labels)
    assert factors[-2].item() == pytest.approx(math.sqrt(threshold / f_rare))  # its rarest category decides
    assert factors[0].item() == 1.0 and factors[-1].item() == 1.0  # frequent category, and no category
    assert repeat_factors(labels, 0.001)[-2].item() == 1.0  # f above the threshold: no repeat


def test_repeat_factor_sampler_repeats_by_the_factors_deterministically_and_splits_across_processes():
    factors = torch.tensor([1.0] * 50 + [3.25] * 4)
    counts = torch.zeros(len(factors))
    epochs = 200
    for epoch in range(epochs):
        sampler = RepeatFactorTrainingSampler(factors, seed=5)
        sampler.set_epoch(epoch)
        counts += torch.bincount(torch.tensor(list(sampler)), minlength=len(factors))
    assert (counts[:50] == epochs).all()
    assert counts[50:].mean().item() / epochs == pytest.approx(3.25, abs=0.05)
    first, again = RepeatFactorTrainingSampler(factors, seed=5), RepeatFactorTrainingSampler(factors, seed=5)
    first.set_epoch(3)
    again.set_epoch(3)
    assert list(first) == list(again)
    shards = [RepeatFactorTrainingSampler(factors, num_replicas=2, rank=r, seed=5) for r in (0, 1)]
    for shard in shards:
        shard.set_epoch(3)
    whole = first.epoch_indices()
    dealt = [i for pair in zip(*[list(s) for s in shards]) for i in pair]
    assert dealt[:len(whole)] == whole and len(list(shards[0])) == len(shards[0])


def test_grouped_batches_keep_every_repeat_of_the_repeat_factor_sampler():
    factors = torch.tensor([1.0, 1.0, 4.0, 1.0, 2.0, 1.0])
    sampler = RepeatFactorTrainingSampler(factors, seed=0)
    order = list(sampler)
    grouped = GroupedBatchSampler(sampler, [0, 1, 0, 1, 0, 1], 2, keep_repeats=True)
    batches = list(grouped)
    assert sorted(i for b in batches for i in b) == sorted(order)  # every occurrence, once
    assert all(len({i % 2 for i in b}) == 1 for b in batches)  # groups respected
    assert sum(len(b) for b in GroupedBatchSampler(sampler, [0, 1, 0, 1, 0, 1], 2)) < len(order)  # the official rule


def test_repeat_factor_training_resumes_on_the_same_batches(tmp_path):
    cfg = loader_cfg(tmp_path, **{"DATALOADER.SAMPLER_TRAIN": "RepeatFactorTrainingSampler",
                                  "DATALOADER.REPEAT_THRESHOLD": 0.9, "SOLVER.MAX_ITER": 6,
                                  "DATALOADER.FILTER_EMPTY_ANNOTATIONS": False})
    whole = [indices for _, _, indices in make_data_loader(cfg, is_train=True, seed=3)]
    resumed = [indices for _, _, indices in make_data_loader(cfg, is_train=True, seed=3, start_iter=4)]
    assert len(whole) == 6 and resumed == whole[4:]
    bad = cfg.clone()
    bad.merge_from_list(["DATALOADER.SAMPLER_TRAIN", "Repeat"])
    with pytest.raises(ValueError, match="SAMPLER_TRAIN must be one of"):
        make_data_loader(bad, is_train=True)
