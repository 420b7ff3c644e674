"""Loss normalisation over processes and the assignment and GIoU at their boundaries, on cases
whose expected values are derived in the test."""
import pytest
import torch

import atss_core.modeling.rpn.atss.loss as loss_module
from atss_core.modeling.rpn.atss.assigners import assign_atss
from atss_core.modeling.rpn.atss.loss import giou_loss
from atss_core.structures import to_image_list

from ..golden.test_official_outputs import build_model, input_images, load_record, targets_of


def losses_of_the_recorded_batch():
    record = load_record("r50_frozenbn")
    cfg, model = build_model(record, ["MODEL.ATSS.POSITIVE_TYPE", "ATSS"])
    batch = to_image_list(input_images(record)[:2], cfg.DATALOADER.SIZE_DIVISIBILITY)
    model.train()
    features = model.backbone(batch.tensors)
    anchors = model.rpn.anchor_generator(batch, features)
    with torch.no_grad():
        return [l.item() for l in model.rpn.loss_evaluator(*model.rpn.head(features), targets_of(record), anchors)]


@pytest.mark.parametrize("others_factor,expected_ratio", [(2.0, 1.0), (3.0, 2.0 / 3.0)])
def test_losses_are_normalised_by_counts_averaged_over_processes(monkeypatch, others_factor, expected_ratio):
    """Two processes. When the other one has as many positives (and as much centerness-target
    mass) as this one, the losses equal the one-process losses; when together they have 3x
    this process's, each process divides by 1.5x its own count: every loss scales by 2/3."""
    single = losses_of_the_recorded_batch()
    monkeypatch.setattr(loss_module, "get_world_size", lambda: 2)
    monkeypatch.setattr(loss_module, "reduce_sum", lambda tensor: tensor * others_factor)
    two = losses_of_the_recorded_batch()
    assert two == pytest.approx([value * expected_ratio for value in single], rel=1e-5)


def test_atss_keeps_candidates_whose_iou_equals_the_threshold():
    """Two anchors symmetric about the gt: equal IoUs, std 0, so the threshold equals the IoU
    and both are positive (IoU >= mean + std)."""
    anchors = torch.tensor([[0.0, 0, 9, 9], [20, 0, 29, 9]])
    gt = torch.tensor([[4.0, 0, 25, 9]])  # both anchor centres (4.5, 24.5) 0.5 inside
    assert assign_atss(anchors=anchors, num_anchors_per_level=[2], gt_boxes=gt, topk=2).tolist() == [0, 0]


def test_atss_centre_must_be_inside_by_more_than_the_margin():
    """The same pair, the gt narrowed so that the centres are 1/128 inside (binary-exact, so the
    two IoUs stay equal and pass the threshold): not positive, being within the 0.01 margin."""
    anchors = torch.tensor([[0.0, 0, 9, 9], [20, 0, 29, 9]])
    gt = torch.tensor([[4.5 - 1 / 128, 0, 24.5 + 1 / 128, 9]])
    assert assign_atss(anchors=anchors, num_anchors_per_level=[2], gt_boxes=gt, topk=2).tolist() == [-1, -1]
    # 1/64 inside is more than the margin: positive
    gt = torch.tensor([[4.5 - 1 / 64, 0, 24.5 + 1 / 64, 9]])
    assert assign_atss(anchors=anchors, num_anchors_per_level=[2], gt_boxes=gt, topk=2).tolist() == [0, 0]


def test_giou_loss_values_by_hand():
    target = torch.tensor([[0.0, 0, 10, 10]])
    # half overlap: inter 50, union 150, enclosing 150 -> 1 - 1/3
    assert giou_loss(torch.tensor([[5.0, 0, 15, 10]]), target).item() == pytest.approx(2 / 3, rel=1e-5)
    # disjoint with a gap of 10: IoU 0, union 200, enclosing 30 x 10 = 300 -> 1 + 100/300
    assert giou_loss(torch.tensor([[20.0, 0, 30, 10]]), target).item() == pytest.approx(1 + 100 / 300, rel=1e-5)
    # a prediction with x2 < x1 is collapsed to zero width at x1 (not flipped): box [5, 0, 5, 10]
    # has no area; IoU 0; enclosing 100 = union -> loss 1
    assert giou_loss(torch.tensor([[5.0, 0, 2, 10]]), target).item() == pytest.approx(1.0, rel=1e-5)
    # weights: a weighted sum
    two = torch.tensor([[5.0, 0, 15, 10], [0.0, 0, 10, 10]])
    assert giou_loss(two, target.repeat(2, 1), weight=torch.tensor([3.0, 1.0])).item() == \
        pytest.approx(3 * 2 / 3, rel=1e-5)
