"""Test-time augmentation: box voting on hand-made boxes, a plain reference on random cases,
the transform list, and the mapping of every run back to the original image."""
import numpy as np
from numpy.testing import assert_allclose
import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.engine.bbox_aug import augmentation_runs, im_detect_bbox_aug
from atss_core.engine.bbox_aug_vote import remove_boxes
from atss_core.engine.bbox_aug_vote import bbox_vote, merge_detections, soft_bbox_vote
from atss_core.structures.boxlist_ops import keep_top_detections
from atss_core.structures.bounding_box import BoxList

PAIR = torch.tensor([[0.0, 0.0, 10.0, 10.0], [2.0, 0.0, 12.0, 10.0]])  # legacy IoU 99 / 143 = 0.692
FAR = torch.tensor([[50.0, 50.0, 60.0, 60.0]])


def test_vote_merges_a_cluster_into_its_score_weighted_mean_with_the_best_score():
    boxes = torch.cat([PAIR, FAR])
    boxes_out, scores_out = bbox_vote(boxes, torch.tensor([0.9, 0.3, 0.5]), vote_thresh=0.66)
    # (0.9 * [0, 0, 10, 10] + 0.3 * [2, 0, 12, 10]) / 1.2
    assert_allclose(boxes_out, [[0.5, 0.0, 10.5, 10.0], [50.0, 50.0, 60.0, 60.0]], rtol=1e-6)
    assert scores_out.tolist() == pytest.approx([0.9, 0.5])


def test_vote_threshold_above_the_overlap_keeps_the_boxes_apart():
    boxes_out, scores_out = bbox_vote(PAIR, torch.tensor([0.9, 0.3]), vote_thresh=0.7)
    assert boxes_out.tolist() == PAIR.tolist() and scores_out.tolist() == pytest.approx([0.9, 0.3])


def test_vote_threshold_is_inclusive():
    # 10x10 boxes (+1: 11x11 = 121) offset by 4 in x: inter 7 x 11 = 77, IoU 77 / 165 = 0.4667;
    # at exactly that threshold they merge (IoU >= VOTE_TH)
    pair = torch.tensor([[0.0, 0, 10, 10], [4.0, 0, 14, 10]])
    iou = 77.0 / 165.0
    merged, _ = bbox_vote(pair, torch.tensor([0.5, 0.5]), vote_thresh=torch.tensor(iou).item())
    assert len(merged) == 1
    apart, _ = bbox_vote(pair, torch.tensor([0.5, 0.5]), vote_thresh=iou + 1e-4)
    assert len(apart) == 2


def test_top_detections_keep_every_box_tied_with_the_last():
    dets = _detections([[0, 0, 5, 5]] * 5, [0.9, 0.5, 0.5, 0.1, 0.7], [1, 1, 1, 1, 1])
    assert sorted(keep_top_detections(dets, 2).get_field("scores").tolist()) == pytest.approx([0.7, 0.9])
    assert sorted(keep_top_detections(dets, 3).get_field("scores").tolist()) == pytest.approx([0.5, 0.5, 0.7, 0.9])
    assert len(keep_top_detections(dets, 5)) == 5 and len(keep_top_detections(dets, 0)) == 5


def test_vote_is_greedy_from_the_best_box():
    # B overlaps A and C, C does not overlap A: clusters {A, B} and {C}
    boxes = torch.tensor([[0.0, 0, 10, 10], [3.0, 0, 13, 10], [6.0, 0, 16, 10]])
    boxes_out, scores_out = bbox_vote(boxes, torch.tensor([0.9, 0.8, 0.7]), vote_thresh=0.5)
    assert_allclose(boxes_out, [[(0.9 * 0 + 0.8 * 3) / 1.7, 0, (0.9 * 10 + 0.8 * 13) / 1.7, 10], [6.0, 0, 16, 10]],
                    rtol=1e-6)
    assert scores_out.tolist() == pytest.approx([0.9, 0.7])


def test_soft_vote_also_keeps_members_with_decayed_scores():
    boxes = torch.cat([PAIR, FAR])
    scores = torch.tensor([0.9, 0.3, 0.5])
    boxes_out, scores_out = soft_bbox_vote(boxes, scores, vote_thresh=0.66, score_th=0.05)
    decayed = 0.3 * (1 - 99.0 / 143.0)  # 0.0923; the best box itself decays to 0 and is dropped
    assert_allclose(boxes_out, [[0.5, 0.0, 10.5, 10.0], [50.0, 50, 60, 60], [2.0, 0, 12, 10]], rtol=1e-6)
    assert scores_out.tolist() == pytest.approx([0.9, 0.5, decayed], abs=1e-6)
    # above the decayed score the member goes
    _, scores_out = soft_bbox_vote(boxes, scores, vote_thresh=0.66, score_th=0.1)
    assert scores_out.tolist() == pytest.approx([0.9, 0.5])


def _reference_vote(boxes, scores, th, soft=False, score_th=0.0):
    """The greedy clustering written as plainly as possible (numpy, one box at a time)."""
    dets = [(b, s) for b, s in sorted(zip(boxes.tolist(), scores.tolist()), key=lambda d: -d[1])]

    def iou(a, b):
        iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
        ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
        inter = max(iw, 0) * max(ih, 0)
        area = lambda r: (r[2] - r[0] + 1) * (r[3] - r[1] + 1)  # noqa: E731
        return inter / (area(a) + area(b) - inter)

    out = []
    while dets:
        best = dets[0]
        cluster = [(d, iou(best[0], d[0])) for d in dets if iou(best[0], d[0]) >= th]  # best included
        dets = [d for d in dets if iou(best[0], d[0]) < th]
        weights = np.array([d[1] for d, _ in cluster])
        merged = (np.array([d[0] for d, _ in cluster]) * weights[:, None]).sum(0) / weights.sum()
        if soft and len(cluster) == 1:
            out.append((best[0], best[1]))
            continue
        out.append((merged.tolist(), weights.max()))
        if soft:
            out += [(d[0], d[1] * (1 - o)) for d, o in cluster if d[1] * (1 - o) >= score_th]
    return sorted(out, key=lambda d: -d[1])


@pytest.mark.parametrize("soft", [False, True])
def test_vote_equals_a_plain_reference_on_random_boxes(soft):
    rng = np.random.RandomState(3)
    for _ in range(30):
        n = rng.randint(1, 40)
        xy = rng.uniform(0, 60, size=(n, 2))
        wh = rng.uniform(2, 30, size=(n, 2))
        boxes = torch.tensor(np.hstack([xy, xy + wh]), dtype=torch.float64)
        scores = torch.tensor(rng.permutation(n) / n + 0.5 / n, dtype=torch.float64)  # distinct scores
        th = rng.uniform(0.3, 0.8)
        if soft:
            got = soft_bbox_vote(boxes, scores, th, score_th=0.05)
        else:
            got = bbox_vote(boxes, scores, th)
        expected = _reference_vote(boxes, scores, th, soft=soft, score_th=0.05)
        assert got[1].tolist() == pytest.approx([s for _, s in expected])
        assert_allclose(got[0].numpy(), [b for b, _ in expected], rtol=1e-9)


def _detections(boxes, scores, labels, size=(100, 100)):
    boxlist = BoxList(torch.tensor(boxes, dtype=torch.float32), size)
    boxlist.add_field("scores", torch.tensor(scores))
    boxlist.add_field("labels", torch.tensor(labels))
    return boxlist


def test_merge_votes_per_class_and_keeps_the_best_detections():
    # the same box twice with two labels: never merged across classes
    dets = _detections([[0, 0, 10, 10], [2, 0, 12, 10], [0, 0, 10, 10], [50, 50, 60, 60]],
                       [0.9, 0.3, 0.8, 0.2], [1, 1, 2, 2])
    merged = merge_detections(dets, nms_th=0.6, detections_per_img=100, vote=True, vote_th=0.66)
    assert merged.get_field("labels").tolist() == [1, 2, 2]
    assert_allclose(merged.bbox, [[0.5, 0, 10.5, 10], [0, 0, 10, 10], [50, 50, 60, 60]], rtol=1e-6)
    top2 = merge_detections(dets, nms_th=0.6, detections_per_img=2, vote=True, vote_th=0.66)
    assert sorted(top2.get_field("scores").tolist()) == pytest.approx([0.8, 0.9])
    # no voting: multi-label NMS keeps the best of each overlapping pair
    nms = merge_detections(dets, nms_th=0.6, detections_per_img=100, vote=False)
    assert sorted(nms.get_field("scores").tolist()) == pytest.approx([0.2, 0.8, 0.9])
    with pytest.raises(ValueError, match="MERGE_TYPE"):
        merge_detections(dets, 0.6, 100, vote=True, merge_type="average")


def test_merge_types_thresholds_and_caps_of_the_vote_path():
    dets = _detections([[0, 0, 10, 10], [2, 0, 12, 10], [0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 9, 9]],
                       [0.9, 0.3, 0.8, 0.2, 0.4], [1, 1, 2, 2, 3])
    # "nms": per-class NMS at nms_th (IoU of the first pair is 99 / 143 = 0.69)
    nms = merge_detections(dets, nms_th=0.6, detections_per_img=100, vote=True, merge_type="nms")
    assert sorted(nms.get_field("scores").tolist()) == pytest.approx([0.2, 0.4, 0.8, 0.9])
    kept_pair = merge_detections(dets, nms_th=0.7, detections_per_img=100, vote=True, merge_type="nms")
    assert len(kept_pair) == 5
    # nms_th <= 0 merges nothing, as officially
    assert len(merge_detections(dets, nms_th=0.0, detections_per_img=100, vote=True)) == 5
    # only the classes 1 .. num_classes - 1 take part
    two_classes = merge_detections(dets, nms_th=0.6, detections_per_img=100, vote=True, num_classes=3)
    assert sorted(set(two_classes.get_field("labels").tolist())) == [1, 2]
    # the vote path has its own cap (officially MODEL.ATSS.PRE_NMS_TOP_N), ties at the cut kept
    capped = merge_detections(dets, nms_th=0.6, detections_per_img=100, vote=True, vote_detections_per_img=2)
    assert sorted(capped.get_field("scores").tolist()) == pytest.approx([0.8, 0.9])
    uncapped = merge_detections(dets, nms_th=0.6, detections_per_img=1, vote=True, vote_detections_per_img=10)
    assert len(uncapped) == 4


def aug_cfg(**overrides):
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "INPUT.MIN_SIZE_TEST", 80, "INPUT.MAX_SIZE_TEST", 200,
                         "DATALOADER.SIZE_DIVISIBILITY", 32, "TEST.BBOX_AUG.ENABLED", True])
    for key, value in overrides.items():
        cfg.merge_from_list(["TEST.BBOX_AUG." + key, value])
    return cfg


def test_augmentation_runs_follow_the_official_order():
    common = dict(H_FLIP=True, SCALES=(60, 900), MAX_SIZE=300, SCALE_H_FLIP=True,
                  SCALE_RANGES=((0, 64), (32, 10000)))
    # without voting: every extra scale at BBOX_AUG.MAX_SIZE, the size ranges unused
    assert augmentation_runs(aug_cfg(**common)) == [(80, 200, False, None), (80, 200, True, None),
                                                    (60, 300, False, None), (60, 300, True, None),
                                                    (900, 300, False, None), (900, 300, True, None)]
    # with voting: a scale below 800 keeps INPUT.MAX_SIZE_TEST, and each scale has its range
    assert augmentation_runs(aug_cfg(VOTE=True, **common)) == [
        (80, 200, False, None), (80, 200, True, None), (60, 200, False, (0, 64)), (60, 200, True, (0, 64)),
        (900, 300, False, (32, 10000)), (900, 300, True, (32, 10000))]
    assert augmentation_runs(aug_cfg()) == [(80, 200, False, None)]
    with pytest.raises(ValueError, match="one \\(lo, hi\\) range per scale"):
        augmentation_runs(aug_cfg(VOTE=True, SCALES=(60, 120), SCALE_RANGES=((0, 64),)))
    with pytest.raises(ValueError, match="0 <= lo < hi"):
        augmentation_runs(aug_cfg(VOTE=True, SCALES=(60,), SCALE_RANGES=((64, 0),)))
    # without voting the ranges are not read, as officially
    assert len(augmentation_runs(aug_cfg(SCALES=(60, 120), SCALE_RANGES=((0, 64),)))) == 3


class BrightBlobDetector(torch.nn.Module):
    """Stands in for the detector: one box around the bright pixels of each input image, in the
    frame the network sees, scored by the input width / 1000 so each run is recognisable."""

    def forward(self, images):
        outputs = []
        for tensor, (h, w) in zip(images.tensors, images.image_sizes):
            ys, xs = torch.nonzero(tensor[0, :h, :w] > 50, as_tuple=True)
            box = BoxList(torch.tensor([[xs.min(), ys.min(), xs.max(), ys.max()]], dtype=torch.float32), (w, h))
            box.add_field("scores", torch.tensor([w / 1000.0]))
            box.add_field("labels", torch.tensor([1]))
            outputs.append(box)
        return outputs


def blob_image(width=160, height=100, box=(20, 30, 59, 69)):
    image = np.zeros((height, width, 3), dtype=np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2 + 1, x1:x2 + 1] = 255
    return image


def test_every_run_is_mapped_back_to_the_original_image():
    """A blob off-centre: flips and rescales must all land on it again in the original frame."""
    cfg = aug_cfg(H_FLIP=True, SCALES=(50, 150), MAX_SIZE=400, SCALE_H_FLIP=True, VOTE=True, VOTE_TH=0.7)
    images = [blob_image(), blob_image(120, 90, (70, 10, 109, 39))]
    results = im_detect_bbox_aug(BrightBlobDetector(), images, torch.device("cpu"), cfg)
    for result, expected, image in zip(results, [(20, 30, 59, 69), (70, 10, 109, 39)], images):
        assert result.size == (image.shape[1], image.shape[0])
        assert len(result) == 1  # all six runs agree, so they vote into one box
        assert result.bbox[0].tolist() == pytest.approx(list(expected), abs=2.0)
    # the best score is the largest input: scale 150, capped at INPUT.MAX_SIZE_TEST 200 since
    # 150 < 800 (a 240 px wide input without the cap)
    assert results[0].get_field("scores").item() == pytest.approx(0.2)


def test_scale_ranges_drop_the_boxes_outside_them():
    # at scale 150 the blob is ~60 px: a (0, 32) range removes it, so the best score is scale 50's
    cfg = aug_cfg(SCALES=(50, 150), MAX_SIZE=400, SCALE_RANGES=((0, 10000), (0, 32)), VOTE=True)
    result, = im_detect_bbox_aug(BrightBlobDetector(), [blob_image()], torch.device("cpu"), cfg)
    assert result.get_field("scores").item() == pytest.approx(0.128)  # the 80 px test scale: 128 px wide


def test_scale_ranges_are_strict_on_the_area_with_plus_one_sizes():
    # sides (+1 convention) 10, 11, 19, 20 against the range (10, 20): areas 100 and 400 are out
    sides = [10, 11, 19, 20]
    dets = _detections([[0, 0, n - 1, n - 1] for n in sides], [0.5] * 4, [1] * 4)
    kept, = remove_boxes([dets], 10, 20)
    assert (kept.bbox[:, 2] + 1).tolist() == [11, 19]
