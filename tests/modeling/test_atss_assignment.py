"""The vectorised assigners against plain-loop reference implementations written here
from the paper / official description, on many random cases, plus hand-checked cases."""
import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.modeling.rpn.atss.atss import BoxCoder
from atss_core.modeling.rpn.anchor_generator import make_anchor_generator_atss
from atss_core.modeling.rpn.atss.assigners import BACKGROUND, IGNORE, assign_atss, assign_topk
from atss_core.modeling.rpn.atss.loss import make_atss_loss_evaluator
from atss_core.structures import BoxList, to_image_list


def legacy_iou(a, b, plus_one=1):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + plus_one)
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + plus_one)
    inter = w * h
    area = lambda box: (box[2] - box[0] + plus_one) * (box[3] - box[1] + plus_one)  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def centre(box):
    return ((box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0)


def inside(point, box):
    return min(point[0] - box[0], point[1] - box[1], box[2] - point[0], box[3] - point[1]) > 0.01


def reference_atss(anchors, counts, gts, k, plus_one=1):
    anchors, gts = anchors.tolist(), gts.tolist()
    positive = [dict() for _ in anchors]  # anchor -> {gt: iou}
    for g, gt in enumerate(gts):
        gc = centre(gt)
        candidates, start = [], 0
        for count in counts:
            level = list(range(start, start + count))
            level.sort(key=lambda i: (centre(anchors[i])[0] - gc[0]) ** 2 + (centre(anchors[i])[1] - gc[1]) ** 2)
            candidates += level[:min(k, count)]
            start += count
        ious = torch.tensor([legacy_iou(anchors[i], gt, plus_one) for i in candidates], dtype=torch.float64)
        threshold = ious.mean() + ious.std()
        for i, iou in zip(candidates, ious.tolist()):
            if iou >= threshold and inside(centre(anchors[i]), gt):
                positive[i][g] = iou
    result = []
    for pos in positive:
        best, best_iou = BACKGROUND, -1.0
        for g in sorted(pos):
            if pos[g] > best_iou:
                best, best_iou = g, pos[g]
        result.append(best)
    return result


def reference_topk(anchors, gts, k, plus_one=1):
    anchors, gts = anchors.tolist(), gts.tolist()
    ious = [[legacy_iou(a, g, plus_one) for g in gts] for a in anchors]
    dist = [[((centre(a)[0] - centre(g)[0]) ** 2 + (centre(a)[1] - centre(g)[1]) ** 2) ** 0.5 for g in gts]
            for a in anchors]
    dmax = max(max(row) for row in dist)
    positive = [dict() for _ in anchors]
    for g, gt in enumerate(gts):
        order = sorted(range(len(anchors)), key=lambda i: -(ious[i][g] - dist[i][g] / dmax / 1000))[:k]
        for i in order:
            if inside(centre(anchors[i]), gt):
                positive[i][g] = ious[i][g]
    return [max(sorted(p), key=lambda g: p[g]) if p else BACKGROUND for p in positive]


def random_scene(seed, image=(160, 128), *opts):
    cfg = default_cfg.clone()
    cfg.merge_from_list(list(opts))
    generator = make_anchor_generator_atss(cfg)
    images = to_image_list([torch.zeros(3, image[1], image[0])], size_divisible=32)
    h, w = images.tensors.shape[-2:]
    features = [torch.zeros(1, 1, (h + s - 1) // s, (w + s - 1) // s) for s in (8, 16, 32, 64, 128)]
    anchors_per_level = generator(images, features)[0]
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 6, (1,), generator=g))
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * torch.tensor([image[0] * 0.8, image[1] * 0.8],
                                                                           dtype=torch.float64)
    wh = 6 + torch.rand(n, 2, generator=g, dtype=torch.float64) * 90
    gts = torch.cat([xy, xy + wh], dim=1).float()
    return anchors_per_level, gts


@pytest.mark.parametrize("seed", range(25))
def test_atss_assignment_matches_reference(seed):
    anchors_per_level, gts = random_scene(seed)
    anchors = torch.cat([a.bbox for a in anchors_per_level]).double()
    counts = [len(a) for a in anchors_per_level]
    ours = assign_atss(anchors=anchors, num_anchors_per_level=counts, gt_boxes=gts.double(), topk=9)
    assert ours.tolist() == reference_atss(anchors, counts, gts.double(), 9)
    assert (ours >= 0).any(), "every random scene has positives"


@pytest.mark.parametrize("seed", range(10))
def test_topk_assignment_matches_reference(seed):
    anchors_per_level, gts = random_scene(100 + seed)
    anchors = torch.cat([a.bbox for a in anchors_per_level]).double()
    assert assign_topk(anchors=anchors, gt_boxes=gts.double(), topk=9).tolist() == reference_topk(anchors, gts.double(), 9)


def test_without_the_plus_one_every_assigner_computes_mmdetections_iou():
    """MODEL.LEGACY_PLUS_ONE False (configs/mmdet/): the loss's assigners use IoU without the
    +1, as the box coder does; in some scenes that changes which anchors ATSS makes positive."""
    options = ["MODEL.LEGACY_PLUS_ONE", "False"]
    changed = 0
    for seed in range(12):
        anchors_per_level, gts = random_scene(200 + seed, (160, 128), *options)
        target = BoxList(gts, (160, 128), plus_one=0)
        target.add_field("labels", torch.ones(len(gts), dtype=torch.int64))
        anchors = torch.cat([a.bbox for a in anchors_per_level])
        counts = [len(a) for a in anchors_per_level]
        for positive_type, reference in (("ATSS", lambda p: reference_atss(anchors, counts, gts, 9, p)),
                                         ("TOPK", lambda p: reference_topk(anchors, gts, 9, p))):
            cfg = hand_cfg(positive_type)
            cfg.merge_from_list(options)
            ours = make_atss_loss_evaluator(cfg, BoxCoder(cfg)).assign(anchors_per_level, target).tolist()
            assert ours == reference(0), (seed, positive_type)
            changed += ours != reference(1)
    assert changed >= 2, "the scenes should show the convention's effect"


def hand_cfg(positive_type):
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.ATSS.POSITIVE_TYPE", positive_type])
    return cfg


def one_level_anchors():
    # a single level: four 20x20 anchors side by side, centres at x = 9.5, 29.5, 49.5, 69.5
    boxes = torch.tensor([[0.0, 0, 19, 19], [20, 0, 39, 19], [40, 0, 59, 19], [60, 0, 79, 19]])
    return [BoxList(boxes, (80, 20))]


def test_atss_hand_case():
    """gt x 10..39 (centre 24.5): the 3 nearest anchors are 1, 0, 2 with IoUs 400/600, 200/800
    and 0; threshold = mean + std = 0.306 + 0.337 = 0.642 -> only anchor 1 (centre inside)."""
    cfg = hand_cfg("ATSS")
    cfg.merge_from_list(["MODEL.ATSS.TOPK", 3])
    loss = make_atss_loss_evaluator(cfg, BoxCoder(cfg))
    target = BoxList(torch.tensor([[10.0, 0, 39, 19]]), (80, 20))
    target.add_field("labels", torch.tensor([3]))
    assert loss.assign(one_level_anchors(), target).tolist() == [BACKGROUND, 0, BACKGROUND, BACKGROUND]
    labels, _ = loss.prepare_targets([target], [one_level_anchors()])
    assert labels[0].tolist() == [0, 3, 0, 0]


def test_iou_assignment_ignores_between_thresholds_and_outside_centres():
    cfg = hand_cfg("IoU")  # FG 0.5, BG 0.4, low-quality matches kept
    loss = make_atss_loss_evaluator(cfg, BoxCoder(cfg))
    # gt x 20..58, y 0..22 (897 px): anchor 1 IoU 400/897 = 0.446 (between, but the gt's best: kept),
    # anchor 2 IoU 380/917 = 0.414 (between: ignored)
    target = BoxList(torch.tensor([[20.0, 0, 58, 22]]), (80, 20))
    target.add_field("labels", torch.tensor([1]))
    assert loss.assign(one_level_anchors(), target).tolist() == [BACKGROUND, 0, IGNORE, BACKGROUND]
    # a positive whose anchor centre (9.5, 9.5) lies outside the gt is ignored
    target = BoxList(torch.tensor([[10.0, 10, 29, 29]]), (80, 20))
    target.add_field("labels", torch.tensor([1]))
    assert loss.assign(one_level_anchors(), target)[0].item() == IGNORE


def test_ssc_assignment_uses_centre_and_scale():
    cfg = hand_cfg("SSC")
    loss = make_atss_loss_evaluator(cfg, BoxCoder(cfg))
    target = BoxList(torch.tensor([[0.0, 0, 39, 19]]), (80, 20))  # centres 9.5 and 29.5 are inside
    target.add_field("labels", torch.tensor([2]))
    assert loss.assign(one_level_anchors(), target).tolist() == [0, 0, BACKGROUND, BACKGROUND]


def test_image_without_objects_is_all_background():
    cfg = hand_cfg("ATSS")
    loss = make_atss_loss_evaluator(cfg, BoxCoder(cfg))
    empty = BoxList(torch.zeros(0, 4), (80, 20))
    empty.add_field("labels", torch.zeros(0, dtype=torch.int64))
    labels, reg = loss.prepare_targets([empty], [one_level_anchors()])
    assert labels[0].tolist() == [0, 0, 0, 0] and torch.isfinite(reg[0]).all()
