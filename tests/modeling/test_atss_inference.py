import math

import pytest
import torch
from torchvision.ops import box_iou

from atss_core.config import cfg as default_cfg
from atss_core.modeling.rpn.atss.atss import BoxCoder
from atss_core.modeling.detector import build_detection_model
from atss_core.modeling.rpn.atss.inference import make_atss_postprocessor
from atss_core.structures import BoxList

from .test_training import synthetic_batch, tiny_cfg


def logit(p):
    return math.log(p / (1 - p))


def one_level_case(num_classes=2):
    """One 2x2 level with anchors of size 20, stride 10, image 20x20 (w, h)."""
    anchors = torch.tensor([[0.0, 0, 19, 19], [10, 0, 29, 19], [0, 10, 19, 29], [10, 10, 29, 29]])
    cls = torch.full((1, num_classes, 2, 2), -10.0)
    reg = torch.zeros(1, 4, 2, 2)
    ctr = torch.full((1, 1, 2, 2), logit(0.5))
    return cls, reg, ctr, [[BoxList(anchors, (20, 20))]]


def postprocessor(**overrides):
    cfg = default_cfg.clone()
    for key, value in overrides.items():
        cfg.merge_from_list([key, value])
    return make_atss_postprocessor(cfg, BoxCoder(cfg))


def test_scores_labels_and_boxes_by_hand():
    cls, reg, ctr, anchors = one_level_case()
    cls[0, 1, 0, 1] = logit(0.8)  # class 2 at cell (y 0, x 1)
    cls[0, 0, 1, 0] = logit(0.04)  # below INFERENCE_TH 0.05: dropped
    (result,) = postprocessor()([cls], [reg], [ctr], anchors)
    assert result.get_field("labels").tolist() == [2]
    assert result.get_field("scores").tolist() == pytest.approx([math.sqrt(0.8 * 0.5)])
    # zero regression decodes to the anchor, clipped to the 20x20 image
    assert result.bbox.tolist() == [[10.0, 0.0, 19.0, 19.0]]
    assert result.size == (20, 20)


def test_ml_nms_keeps_overlaps_of_other_classes_and_caps_detections():
    cls, reg, ctr, anchors = one_level_case()
    cls[0, 0, 0, 0] = logit(0.9)
    cls[0, 0, 0, 1] = logit(0.7)  # same class, IoU of the clipped boxes 200/400 = 0.5 < 0.6: kept
    cls[0, 1, 0, 0] = logit(0.6)  # other class on the same anchor: kept
    (result,) = postprocessor()([cls], [reg], [ctr], anchors)
    assert sorted(result.get_field("labels").tolist()) == [1, 1, 2]
    (capped,) = postprocessor(**{"TEST.DETECTIONS_PER_IMG": 2})([cls], [reg], [ctr], anchors)
    assert capped.get_field("scores").tolist() == pytest.approx([math.sqrt(0.45), math.sqrt(0.35)], rel=1e-5)
    (suppressed,) = postprocessor(**{"MODEL.ATSS.NMS_TH": 0.4})([cls], [reg], [ctr], anchors)
    assert sorted(suppressed.get_field("labels").tolist()) == [1, 2]


def test_pre_nms_top_n_limits_candidates_per_level():
    cls, reg, ctr, anchors = one_level_case(num_classes=1)
    cls[:] = logit(0.9)
    cls[0, 0, 1, 1] = logit(0.95)
    (result,) = postprocessor(**{"MODEL.ATSS.PRE_NMS_TOP_N": 1})([cls], [reg], [ctr], anchors)
    assert len(result) == 1 and result.bbox.tolist() == [[10.0, 10.0, 19.0, 19.0]]


def test_eval_mode_detections_live_in_the_input_image_frame():
    torch.manual_seed(0)
    cfg = tiny_cfg()
    cfg.merge_from_list(["MODEL.ATSS.INFERENCE_TH", 0.0])
    model = build_detection_model(cfg)
    model.eval()
    images, _ = synthetic_batch(n=2)
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2
    for boxlist, (h, w) in zip(detections, images.image_sizes):
        assert boxlist.size == (w, h) and len(boxlist) == 100  # DETECTIONS_PER_IMG
        assert boxlist.bbox[:, [0, 2]].min() >= 0 and boxlist.bbox[:, [0, 2]].max() <= w - 1
        assert boxlist.bbox[:, [1, 3]].min() >= 0 and boxlist.bbox[:, [1, 3]].max() <= h - 1
        assert set(boxlist.get_field("labels").tolist()) <= {1, 2}


def reference_class_wise_nms(boxes, scores, classes, iou_threshold):
    """Plain greedy NMS (IoU without +1) within each class, then all kept by descending score."""
    kept = []
    for label in classes.unique().tolist():
        order = [i for i in scores.argsort(descending=True).tolist() if classes[i] == label]
        chosen = []
        for i in order:
            if all(float(box_iou(boxes[i:i + 1], boxes[j:j + 1])) <= iou_threshold for j in chosen):
                chosen.append(i)
        kept += chosen
    return sorted(kept, key=lambda i: -float(scores[i]))


@pytest.mark.parametrize("split", [None, 10])
def test_class_wise_nms_by_offsets_and_by_loop_is_plain_per_class_nms(monkeypatch, split):
    """mmcv's batched_nms offsets the boxes by class below CLASS_WISE_NMS_SPLIT boxes and loops
    over the classes from there: both give per-class greedy NMS, by descending score."""
    from atss_core.modeling.rpn.atss import inference

    if split is not None:
        monkeypatch.setattr(inference, "CLASS_WISE_NMS_SPLIT", split)
    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(120, 2, generator=generator) * 60
    boxes = torch.cat([xy, xy + 4 + torch.rand(120, 2, generator=generator) * 30], dim=1)
    scores = torch.rand(120, generator=generator)
    classes = torch.randint(0, 4, (120,), generator=generator)
    kept = inference.class_wise_nms(boxes, scores, classes, 0.6)
    assert kept.tolist() == reference_class_wise_nms(boxes, scores, classes, 0.6)
    assert 20 < len(kept) < 120
    assert inference.class_wise_nms(boxes[:0], scores[:0], classes[:0], 0.6).tolist() == []
