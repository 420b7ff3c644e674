"""Training targets beyond plain objects: ignore regions (MODEL.ATSS.IGNORE_CROWD) and images
without objects (DATALOADER.FILTER_EMPTY_ANNOTATIONS False), on every POSITIVE_TYPE."""
import math

import pytest
import torch

from atss_core.data.datasets.ignore_regions import with_ignore_regions
from atss_core.modeling.detector import build_detection_model
from atss_core.modeling.rpn.atss.assigners import BACKGROUND, IGNORE, ignore_overlapping
from atss_core.structures import BoxList, to_image_list

from .test_training import tiny_cfg

SIZE = 256


def boxes(rows, labels):
    target = BoxList(torch.tensor(rows, dtype=torch.float32).reshape(-1, 4), (SIZE, SIZE))
    target.add_field("labels", torch.tensor(labels, dtype=torch.int64))
    return target


def head_outputs(positive_type="ATSS", seed=0):
    torch.manual_seed(seed)
    cfg = tiny_cfg()
    cfg.merge_from_list(["MODEL.ATSS.POSITIVE_TYPE", positive_type])
    model = build_detection_model(cfg)
    model.train()
    batch = to_image_list([torch.rand(3, SIZE, SIZE) * 50], 32)
    features = model.backbone(batch.tensors)
    anchors = model.rpn.anchor_generator(batch, features)
    box_cls, box_regression, centerness = model.rpn.head(features)
    return model.rpn.loss_evaluator, [c.detach() for c in box_cls], [r.detach() for r in box_regression], \
        [c.detach() for c in centerness], anchors


def flat_labels(loss_evaluator, targets, anchors):
    return torch.cat(loss_evaluator._targets(targets, anchors)[1])


def with_flat_logits_changed(box_cls, mask, value, num_classes=2):
    """The per-level logits with every class logit of the anchors in ``mask`` (the loss's flat
    anchor order of one image: level, y, x, anchor) set to ``value``."""
    changed, start = [], 0
    for level in box_cls:
        _, channels, height, width = level.shape
        rows = level.permute(0, 2, 3, 1).reshape(-1, num_classes).clone()  # [H * W * A, C]
        rows[mask[start:start + rows.shape[0]]] = value
        changed.append(rows.reshape(1, height, width, channels).permute(0, 3, 1, 2))
        start += rows.shape[0]
    assert start == mask.numel()
    return changed


def test_anchors_over_a_crowd_are_ignored_and_their_logits_do_not_count():
    loss_evaluator, box_cls, box_regression, centerness, anchors = head_outputs()
    objects = boxes([[4, 4, 27, 27]], [1])
    crowd = boxes([[34, 30, 63, 63]], [2])
    target = with_ignore_regions(objects, crowd)
    labels = flat_labels(loss_evaluator, [target], anchors)
    plain = flat_labels(loss_evaluator, [objects], anchors)
    assert (labels == -1).any() and not (plain == -1).any()
    assert torch.equal(labels[labels > 0], plain[plain > 0])  # the real object's positives are unchanged
    assert not (labels > 1).any()  # the crowd's label never becomes a class target

    cls_loss = loss_evaluator(box_cls, box_regression, centerness, [target], anchors)[0]
    moved = loss_evaluator(with_flat_logits_changed(box_cls, labels == -1, 9.0), box_regression, centerness,
                           [target], anchors)[0]
    assert moved.item() == pytest.approx(cls_loss.item(), rel=1e-6)
    background = (labels == 0).nonzero().squeeze(1)[:5]
    mask = torch.zeros_like(labels, dtype=torch.bool)
    mask[background] = True
    moved_background = loss_evaluator(with_flat_logits_changed(box_cls, mask, 9.0), box_regression, centerness,
                                      [target], anchors)[0]
    assert moved_background.item() > cls_loss.item() * 1.01  # a background anchor's logit does count


def test_ignore_by_iof_leaves_positives_and_anchors_outside():
    anchors = torch.tensor([[0.0, 0, 9, 9], [10, 0, 19, 9], [40, 40, 49, 49], [45, 45, 54, 54], [60, 60, 69, 69]])
    gt_index = torch.tensor([0, BACKGROUND, BACKGROUND, BACKGROUND, BACKGROUND])
    region = torch.tensor([[0.0, 0, 49, 49]])
    out = ignore_overlapping(gt_index, anchors, region, 0.5)
    # anchor 0 is a positive (kept), 1 and 2 lie inside, 3 has 25% of its area inside, 4 none
    assert out.tolist() == [0, IGNORE, IGNORE, BACKGROUND, BACKGROUND]
    assert ignore_overlapping(gt_index, anchors, region, 0.2).tolist()[3] == IGNORE


@pytest.mark.parametrize("positive_type", ["ATSS", "SSC", "IoU", "TOPK"])
def test_an_image_without_objects_trains_as_background(positive_type):
    loss_evaluator, box_cls, box_regression, centerness, anchors = head_outputs(positive_type)
    empty = boxes([], [])
    labels = flat_labels(loss_evaluator, [empty], anchors)
    assert (labels == 0).all()
    box_regression = [r.clone().requires_grad_() for r in box_regression]
    cls_loss, reg_loss, centerness_loss = loss_evaluator(box_cls, box_regression, centerness, [empty], anchors)
    assert math.isfinite(cls_loss.item()) and cls_loss.item() > 0
    assert reg_loss.item() == 0 and centerness_loss.item() == 0
    reg_loss.backward()
    assert all(float(r.grad.abs().sum()) == 0 for r in box_regression)


def test_a_crowd_only_image_is_background_with_ignored_anchors():
    loss_evaluator, box_cls, box_regression, centerness, anchors = head_outputs()
    target = with_ignore_regions(boxes([], []), boxes([[10, 10, 50, 50]], [1]))
    labels = flat_labels(loss_evaluator, [target], anchors)
    assert (labels == -1).any() and not (labels > 0).any()
    losses = loss_evaluator(box_cls, box_regression, centerness, [target], anchors)
    assert all(math.isfinite(v.item()) for v in losses)
