"""Assignment in dense scenes: our assigners work on slices of the [anchors, gts] pairs and must
give, bit for bit, what the official computation gives with the whole matrices
(atss_core/benchmark/dense_assignment.py re-states it), for every POSITIVE_TYPE, both box
conventions and any slice size; and their memory must not grow with the whole matrix."""
import pytest
import torch

from atss_core.benchmark import dense_assignment
from atss_core.benchmark.dense_assignment import dense_boxes, full_matrix_assign, scene_anchors, sliced_assign
from atss_core.modeling.matcher import Matcher
from atss_core.modeling.rpn.atss.assigners import BACKGROUND, IGNORE, chunks, ignore_overlapping

HEIGHT, WIDTH = 256, 320
POSITIVE_TYPES = ("ATSS", "TOPK", "SSC", "IoU")


@pytest.fixture(scope="module", params=[1, 9], ids=["1-anchor", "9-anchors"])
def scene(request):
    return request.param, {plus_one: scene_anchors(HEIGHT, WIDTH, request.param, plus_one) for plus_one in (0, 1)}


@pytest.mark.parametrize("positive_type", POSITIVE_TYPES)
@pytest.mark.parametrize("plus_one", [1, 0], ids=["legacy+1", "exact"])
def test_sliced_assignment_equals_the_whole_matrices(scene, positive_type, plus_one):
    per_location, by_convention = scene
    anchors, counts = by_convention[plus_one]
    for seed, num_gt in ((0, 180), (1, 37)):
        # integer corners on a dense scene: many equal distances and IoUs, so ties are exercised
        gt_boxes = dense_boxes(num_gt, HEIGHT, WIDTH, seed=seed)
        expected = full_matrix_assign(positive_type, anchors, counts, gt_boxes, per_location=per_location,
                                      plus_one=plus_one)
        assert (expected >= 0).sum() > num_gt  # a real dense assignment, not all background
        # one gt (or anchor) per slice, a few, the default, everything at once
        for chunk_elements in (4 * num_gt if positive_type == "SSC" else 1, 3 * anchors.shape[0] + 5, None,
                               10 ** 12):
            ours = sliced_assign(positive_type, anchors, counts, gt_boxes, per_location=per_location,
                                 plus_one=plus_one, chunk_elements=chunk_elements)
            assert torch.equal(ours, expected), (positive_type, chunk_elements)


def test_the_reference_is_the_official_computation():
    """The dense scene's official-style result agrees with an independent per-gt loop of the
    ATSS rule for the gts that no other gt competes with (a check of the reference itself)."""
    anchors, counts = scene_anchors(HEIGHT, WIDTH, 1)
    gt_boxes = torch.tensor([[20.0, 30.0, 80.0, 90.0], [200.0, 100.0, 260.0, 200.0]])
    result = full_matrix_assign("ATSS", anchors, counts, gt_boxes)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    for g, box in enumerate(gt_boxes):
        from atss_core.structures.boxlist_ops import box_iou_legacy
        ious = box_iou_legacy(anchors, box[None])[:, 0]
        distances = (centres - (box[:2] + box[2:]) / 2).norm(dim=1)
        candidates, start = [], 0
        for count in counts:
            candidates.append(distances[start:start + count].topk(min(9, count), largest=False).indices + start)
            start += count
        candidates = torch.cat(candidates)
        threshold = ious[candidates].mean() + ious[candidates].std()
        inside = ((centres[candidates] - box[:2]).min(dim=1).values > 0.01) & \
                 ((box[2:] - centres[candidates]).min(dim=1).values > 0.01)
        positive = candidates[(ious[candidates] >= threshold) & inside]
        assert positive.numel() > 0
        assert set((result == g).nonzero().squeeze(1).tolist()) == set(positive.tolist())


def test_matcher_in_slices_equals_the_whole_matrix():
    g = torch.Generator().manual_seed(0)
    # quantised qualities: many ties between gts and anchors, and several best anchors per gt
    quality = (torch.rand(23, 400, generator=g) * 8).floor() / 8
    matcher = Matcher(0.5, 0.4, True)
    expected = matcher(quality.clone())
    for step in (1, 2, 5, 23):
        parts = [(s, quality[s:s + step].clone()) for s in range(0, 23, step)]
        assert torch.equal(matcher.match_in_chunks(parts), expected), step
    no_low_quality = Matcher(0.5, 0.4, False)
    assert torch.equal(no_low_quality.match_in_chunks([(s, quality[s:s + 4].clone()) for s in range(0, 23, 4)]),
                       no_low_quality(quality.clone()))


def test_ignore_regions_in_slices_equal_all_at_once():
    anchors, counts = scene_anchors(HEIGHT, WIDTH, 9)
    gt_index = full_matrix_assign("ATSS", anchors, counts, dense_boxes(50, HEIGHT, WIDTH), per_location=9)
    regions = dense_boxes(30, HEIGHT, WIDTH, seed=3, min_size=20, max_size=90)
    expected = ignore_overlapping(gt_index, anchors, regions, 0.5, chunk_elements=10 ** 12)
    assert (expected == IGNORE).sum() > 0 and (expected == BACKGROUND).sum() > 0
    for chunk_elements in (1, 777, None):
        assert torch.equal(ignore_overlapping(gt_index, anchors, regions, 0.5, chunk_elements=chunk_elements),
                           expected)


def test_chunks_cover_the_range_once():
    for total, per_item, budget in ((10, 3, 7), (1, 1000, 1), (1000, 1, 64), (17, 0, 5)):
        parts = chunks(total, per_item, budget)
        assert [i for p in parts for i in range(p.start, p.stop)] == list(range(total))
        assert all(p.stop - p.start <= max(1, budget // max(1, per_item)) for p in parts)


@pytest.mark.skipif(not dense_assignment._reset_peak(), reason="needs Linux's /proc/self/clear_refs")
def test_memory_of_a_dense_assignment_stays_small():
    """3000 objects at 800x1333 (22k anchors): the whole matrices would need about 2 GB
    (measured by the benchmark); ours stays within a few slices' worth."""
    ours = dense_assignment.measure_in_subprocess("ours", "ATSS", 3000, 1, repeats=1)
    official = dense_assignment.measure_in_subprocess("official", "ATSS", 300, 1, repeats=1)
    assert ours["peak_bytes"] < 400 * 1024 ** 2, ours
    assert official["peak_bytes"] > ours["peak_bytes"], (official, ours)
