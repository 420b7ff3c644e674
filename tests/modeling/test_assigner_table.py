"""The POSITIVE_TYPE -> assigner table, the loss's explicit constructor and the choice of the
rpn head through its registry."""
import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.modeling.rpn.atss.assigners import ASSIGNERS, assign_atss, assign_iou, assign_ssc, assign_topk
from atss_core.modeling.rpn.atss.atss import BoxCoder
from atss_core.modeling.rpn.atss.loss import ATSSLossComputation, ATSSLossSettings, make_atss_loss_evaluator
from atss_core.modeling.rpn.rpn import build_rpn
from atss_core.structures import BoxList


def scene():
    torch.manual_seed(0)
    xy = torch.rand(60, 2) * 200
    anchors = torch.cat([xy, xy + torch.rand(60, 2) * 80 + 8], dim=1)
    gxy = torch.rand(3, 2) * 150
    gt_boxes = torch.cat([gxy, gxy + torch.rand(3, 2) * 90 + 20], dim=1)
    targets = BoxList(gt_boxes, (300, 300))
    return anchors, [40, 20], targets, gt_boxes


def test_table_covers_the_config_values_and_calls_its_assigner():
    anchors, counts, targets, gt_boxes = scene()
    settings = dict(anchors=anchors, num_anchors_per_level=counts, gt_boxes=gt_boxes, topk=3,
                    num_anchors_per_location=2, fg_iou_threshold=0.5, bg_iou_threshold=0.4, plus_one=0)
    expected = {
        "ATSS": assign_atss(anchors=anchors, num_anchors_per_level=counts, gt_boxes=gt_boxes, topk=6, plus_one=0),
        "SSC": assign_ssc(anchors=anchors, num_anchors_per_level=counts, gt_boxes=gt_boxes, plus_one=targets.plus_one),
        "IoU": assign_iou(anchors=anchors, gt_boxes=gt_boxes, fg_iou_threshold=0.5, bg_iou_threshold=0.4, plus_one=0),
        "TOPK": assign_topk(anchors=anchors, gt_boxes=gt_boxes, topk=3, plus_one=0),
    }
    assert set(ASSIGNERS) == set(expected)
    for name, assigner in ASSIGNERS.items():
        assert torch.equal(assigner(**settings), expected[name]), name
    # SSC's tie-break by area uses the areas of BoxList.area in the same convention
    ssc = assign_ssc(anchors=anchors, num_anchors_per_level=counts, gt_boxes=gt_boxes, plus_one=targets.plus_one)
    areas = targets.area()
    assert torch.equal(areas, (gt_boxes[:, 2] - gt_boxes[:, 0] + 1) * (gt_boxes[:, 3] - gt_boxes[:, 1] + 1))
    assert (ssc >= 0).any()


def test_loss_takes_explicit_settings_and_the_config_maker_reads_them():
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.ATSS.POSITIVE_TYPE", "TOPK", "MODEL.ATSS.TOPK", 7, "MODEL.ATSS.REG_LOSS_WEIGHT", 3.0])
    made = make_atss_loss_evaluator(cfg, BoxCoder(cfg))
    assert (made.positive_type, made.settings.topk, made.reg_loss_weight) == ("TOPK", 7, 3.0)
    assert made.settings.num_anchors_per_location == (len(cfg.MODEL.ATSS.ASPECT_RATIOS)
                                                      * cfg.MODEL.ATSS.SCALES_PER_OCTAVE)
    official_call = ATSSLossComputation(cfg, BoxCoder(cfg))
    assert official_call.settings == made.settings
    direct = ATSSLossComputation(None, BoxCoder(cfg), settings=ATSSLossSettings(
        positive_type="TOPK", topk=7, num_anchors_per_location=1, fg_iou_threshold=0.5, bg_iou_threshold=0.4,
        focal_gamma=2.0, focal_alpha=0.25, reg_loss_weight=3.0))
    anchors, counts, targets, _ = scene()
    assert torch.equal(direct._assign(anchors, counts, targets), made._assign(anchors, counts, targets))


def test_unknown_positive_type_names_the_key_and_the_choices():
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.ATSS.POSITIVE_TYPE", "ATTS"])
    with pytest.raises(ValueError, match=r"MODEL\.ATSS\.POSITIVE_TYPE must be one of ATSS, SSC, IoU, TOPK; got 'ATTS'"):
        make_atss_loss_evaluator(cfg, BoxCoder(cfg))


@pytest.mark.parametrize("flags,message", [
    ({"MODEL.FCOS_ON": True}, "unknown rpn head 'FCOS'; registered: ATSS"),
    ({"MODEL.RETINANET_ON": True}, "unknown rpn head 'RetinaNet'; registered: ATSS"),
    ({}, "exactly one of MODEL.ATSS_ON, MODEL.FCOS_ON, MODEL.RETINANET_ON must be True"),
    ({"MODEL.ATSS_ON": True, "MODEL.FCOS_ON": True}, "exactly one of MODEL.ATSS_ON"),
])
def test_build_rpn_chooses_the_head_through_the_registry(flags, message):
    cfg = default_cfg.clone()
    for key, value in flags.items():
        cfg.merge_from_list([key, value])
    with pytest.raises((KeyError, ValueError), match=message):
        build_rpn(cfg, 32)


def test_build_rpn_builds_the_atss_head():
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.ATSS_ON", True, "MODEL.DEVICE", "cpu"])
    assert type(build_rpn(cfg, 32)).__name__ == "ATSSModule"


def test_rpn_heads_registry_keeps_the_official_single_conv_head():
    from atss_core.modeling.registry import RPN_HEADS

    head = RPN_HEADS["SingleConvRPNHead"](default_cfg.clone(), 16, 3)
    logits, deltas = head([torch.rand(2, 16, 8, 10), torch.rand(2, 16, 4, 5)])
    assert [tuple(t.shape) for t in logits] == [(2, 3, 8, 10), (2, 3, 4, 5)]
    assert [tuple(t.shape) for t in deltas] == [(2, 12, 8, 10), (2, 12, 4, 5)]


def test_ssc_breaks_ties_with_the_targets_own_areas():
    """Targets in the +1 convention under MODEL.LEGACY_PLUS_ONE False: SSC's smallest-gt tie-break
    uses the targets' BoxList.area() (as before the assigners became plain functions), not areas
    recomputed in the loss's convention, which order these two gts the other way."""
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.ATSS.POSITIVE_TYPE", "SSC", "MODEL.LEGACY_PLUS_ONE", False])
    loss = make_atss_loss_evaluator(cfg, BoxCoder(cfg))
    anchors = torch.tensor([[0.0, 1.0, 1.0, 3.0]])  # centre (0.5, 2), inside both gts
    gt_boxes = torch.tensor([[0.0, 0.0, 1.0, 10.0], [0.0, 0.0, 3.0, 4.0]])  # +1 areas 22 and 20; plain 10 and 12
    targets = BoxList(gt_boxes, (20, 20), plus_one=1)
    targets.add_field("labels", torch.tensor([1, 2]))
    assert loss._assign(anchors, [1], targets).tolist() == [1]
    assert assign_ssc(anchors=anchors, num_anchors_per_level=[1], gt_boxes=gt_boxes, plus_one=0).tolist() == [0]
