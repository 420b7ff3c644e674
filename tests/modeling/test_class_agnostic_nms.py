"""MODEL.ATSS.NMS_CLASS_AGNOSTIC: one NMS over all classes in both post-processings (the
exported graph: tests/tools/test_export_onnx.py); off by default, where a duplicate of another
class survives."""
import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.modeling.rpn.atss.atss import BoxCoder
from atss_core.modeling.rpn.atss.inference import make_atss_postprocessor
from atss_core.structures import BoxList
from atss_core.structures.boxlist_ops import box_iou_legacy


def detections():
    # a box of class 1, the same object found again as class 2, and a lone box of class 2
    boxes = torch.tensor([[10.0, 10.0, 60.0, 60.0], [12.0, 11.0, 61.0, 60.0], [100.0, 100.0, 140.0, 150.0]])
    boxlist = BoxList(boxes, (200, 200))
    boxlist.add_field("scores", torch.tensor([0.9, 0.8, 0.7]))
    boxlist.add_field("labels", torch.tensor([1, 2, 2]))
    return boxlist


def postprocessor(postprocess, agnostic):
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.ATSS.POSTPROCESS", postprocess, "MODEL.ATSS.NMS_CLASS_AGNOSTIC", agnostic])
    return make_atss_postprocessor(cfg, BoxCoder(cfg))


@pytest.mark.parametrize("postprocess", ["official", "mmdet"])
def test_class_agnostic_nms_removes_the_cross_class_duplicate(postprocess):
    class_wise = postprocessor(postprocess, False).select_over_all_levels([detections()])[0]
    agnostic = postprocessor(postprocess, True).select_over_all_levels([detections()])[0]
    assert sorted(class_wise.get_field("scores").tolist()) == pytest.approx([0.7, 0.8, 0.9])
    assert sorted(agnostic.get_field("scores").tolist()) == pytest.approx([0.7, 0.9])
    assert sorted(agnostic.get_field("labels").tolist()) == [1, 2]


def test_class_agnostic_nms_leaves_no_overlap_of_any_classes():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(300, 2, generator=g) * 300
    boxes = torch.cat([xy, xy + 20 + torch.rand(300, 2, generator=g) * 40], dim=1)
    boxlist = BoxList(boxes, (400, 400))
    boxlist.add_field("scores", torch.rand(300, generator=g))
    boxlist.add_field("labels", torch.randint(1, 6, (300,), generator=g))
    post = postprocessor("official", True)
    post.fpn_post_nms_top_n = 1000
    kept = post.select_over_all_levels([boxlist])[0]
    ious = box_iou_legacy(kept.bbox, kept.bbox)
    ious.fill_diagonal_(0)
    assert 10 < len(kept) < 300 and ious.max() <= post.nms_thresh
    class_wise = postprocessor("official", False)
    class_wise.fpn_post_nms_top_n = 1000
    assert len(class_wise.select_over_all_levels([boxlist])[0]) > len(kept)


def test_it_is_off_by_default_and_refused_with_the_multi_scale_test():
    assert default_cfg.MODEL.ATSS.NMS_CLASS_AGNOSTIC is False
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.ATSS.NMS_CLASS_AGNOSTIC", True, "TEST.BBOX_AUG.ENABLED", True])
    with pytest.raises(ValueError, match="NMS_CLASS_AGNOSTIC is not supported with TEST.BBOX_AUG"):
        make_atss_postprocessor(cfg, BoxCoder(cfg))
