import torch

from atss_core.data.collate_batch import BatchCollator
from atss_core.data.samplers import DistributedSampler, GroupedBatchSampler, IterationBasedBatchSampler


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
