import json

import numpy as np
import pytest
import torch

from atss_core.data.datasets import PascalVOCDataset
from atss_core.data.datasets.evaluation import evaluate
from atss_core.data.datasets.evaluation.voc.voc_eval import voc_ap, voc_class_aps
from atss_core.structures import BoxList

XML = """<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth></size>{objects}</annotation>"""
OBJ = ("<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{box[0]}</xmin>"
       "<ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox></object>")


def write_voc(root, images):
    import cv2

    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for name, (w, h, objects) in images.items():
        cv2.imwrite(str(root / "JPEGImages" / (name + ".jpg")), np.zeros((h, w, 3), dtype=np.uint8))
        xml = XML.format(w=w, h=h, objects="".join(OBJ.format(name=n, difficult=int(d), box=b) for n, d, b in objects))
        (root / "Annotations" / (name + ".xml")).write_text(xml)
    (root / "ImageSets" / "Main" / "test.txt").write_text("\n".join(images) + "\n")


def test_voc_dataset_reads_boxes_classes_and_difficult(tmp_path):
    write_voc(tmp_path, {"a": (50, 40, [("dog", False, (1, 1, 10, 20)), ("cat", True, (5, 5, 30, 30))]),
                         "b": (30, 30, [("Person ", False, (2, 3, 4, 5))])})
    dataset = PascalVOCDataset(str(tmp_path), "test")
    assert dataset.classes[:3] == ("__background__", "aeroplane", "bicycle") and len(dataset.classes) == 21
    image, target, index = dataset[0]
    assert image.shape == (40, 50, 3) and index == 0
    assert target.bbox.tolist() == [[0.0, 0.0, 9.0, 19.0]]  # 1-based inclusive -> 0-based, difficult dropped
    assert target.get_field("labels").tolist() == [dataset.class_to_ind["dog"]]
    full = dataset.get_groundtruth(0, keep_difficult=True)
    assert full.get_field("difficult").tolist() == [False, True]
    assert dataset.get_groundtruth(1).get_field("labels").tolist() == [dataset.class_to_ind["person"]]


def test_custom_classes_are_inferred_and_errors_are_named(tmp_path):
    write_voc(tmp_path, {"r1": (20, 20, [("raccoon", False, (1, 1, 5, 5))])})
    dataset = PascalVOCDataset(str(tmp_path), "test")
    assert dataset.classes == ("__background__", "raccoon")
    with pytest.raises(FileNotFoundError, match="VOC split file not found"):
        PascalVOCDataset(str(tmp_path), "train")


def test_voc_ap_hand_case():
    """gts: A, B (difficult), C; detections by score: hit A, hit B (ignored), miss, hit C.
    recall [.5, .5, 1], precision [1, .5, 2/3] -> 11-point AP = (6 * 1 + 5 * 2/3) / 11."""
    gt = BoxList(torch.tensor([[0.0, 0, 9, 9], [20, 20, 29, 29], [40, 40, 49, 49]]), (60, 60))
    gt.add_field("labels", torch.tensor([1, 1, 1]))
    gt.add_field("difficult", torch.tensor([False, True, False]))
    pred = BoxList(torch.tensor([[0.0, 0, 9, 9], [20, 20, 29, 29], [0, 40, 5, 45], [40, 40, 49, 50]]), (60, 60))
    pred.add_field("labels", torch.tensor([1, 1, 1, 1]))
    pred.add_field("scores", torch.tensor([0.9, 0.8, 0.7, 0.6]))
    aps = voc_class_aps([pred], [gt], num_classes=3)
    assert aps[1] == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert np.isnan(aps[2])
    assert voc_ap(np.array([0.5, 1.0]), np.array([1.0, 0.5]), use_07_metric=False) == pytest.approx(0.75)


def test_voc_ap_threshold_duplicates_and_metric():
    """gts A, C; detections by score: a 10 x 12 box around A (IoU 100 / 120), A again (a
    duplicate: false positive), C exactly -> recall [.5, .5, 1], precision [1, .5, 2/3]."""
    gt = BoxList(torch.tensor([[0.0, 0, 9, 9], [40, 40, 49, 49]]), (60, 60))
    gt.add_field("labels", torch.tensor([1, 1]))
    gt.add_field("difficult", torch.tensor([False, False]))
    pred = BoxList(torch.tensor([[0.0, 0, 9, 11], [0.0, 0, 9, 9], [40, 40, 49, 49]]), (60, 60))
    pred.add_field("labels", torch.tensor([1, 1, 1]))
    pred.add_field("scores", torch.tensor([0.9, 0.8, 0.7]))
    aps = voc_class_aps([pred], [gt], num_classes=2)
    assert aps[1] == pytest.approx((6 + 5 * 2 / 3) / 11)  # VOC07 11-point by default
    area_ap = voc_class_aps([pred], [gt], num_classes=2, use_07_metric=False)[1]
    assert area_ap == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # a detection at IoU 0.55 is a hit at the 0.5 threshold and a miss at 0.6
    loose = BoxList(torch.tensor([[0.0, 0, 9, 17.0]]), (60, 60))  # 10 x 18 around A: IoU 100 / 180 = 0.556
    loose.add_field("labels", torch.tensor([1]))
    loose.add_field("scores", torch.tensor([0.9]))
    assert voc_class_aps([loose], [gt], num_classes=2)[1] == pytest.approx(6 / 11)  # recall 0.5, precision 1
    assert voc_class_aps([loose], [gt], num_classes=2, iou_thresh=0.6)[1] == 0.0


def test_voc_evaluation_through_evaluate(tmp_path):
    write_voc(tmp_path, {"a": (50, 40, [("dog", False, (1, 1, 10, 20))])})
    dataset = PascalVOCDataset(str(tmp_path), "test")
    pred = BoxList(torch.tensor([[0.0, 0.0, 18.0, 38.0]]), (100, 80))  # 2x frame
    pred.add_field("labels", torch.tensor([dataset.class_to_ind["dog"]]))
    pred.add_field("scores", torch.tensor([0.5]))
    report = evaluate(dataset, [pred], str(tmp_path / "out"))
    assert report["mAP"] == pytest.approx(1.0)
    saved = json.loads((tmp_path / "out" / "voc_metrics.json").read_text())
    assert saved["mAP"] == pytest.approx(report["mAP"])


def test_real_raccoon_voc_annotations():
    from ..conftest import shared_path

    dataset = PascalVOCDataset(shared_path("data", "raccoon"), "val")
    assert len(dataset) == 40 and dataset.classes == ("__background__", "raccoon")
    assert sum(len(dataset.get_groundtruth(i)) for i in range(len(dataset))) == 43
    image, target, _ = dataset[3]
    assert image.shape[:2] == (dataset.get_img_info(3)["height"], dataset.get_img_info(3)["width"])
    assert len(target) >= 1


def _boxes(boxes, labels, scores=None, difficult=None):
    boxlist = BoxList(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), (100, 100))
    boxlist.add_field("labels", torch.tensor(labels, dtype=torch.int64))
    if scores is not None:
        boxlist.add_field("scores", torch.tensor(scores))
    if difficult is not None:
        boxlist.add_field("difficult", torch.tensor(difficult, dtype=torch.bool))
    return boxlist


def test_official_voc_functions_give_precision_recall_and_ap_by_hand():
    from atss_core.data.datasets.evaluation.voc.voc_eval import (calc_detection_voc_ap, calc_detection_voc_prec_rec,
                                                                  eval_detection_voc)

    gts = [_boxes([[0, 0, 9, 9], [50, 50, 59, 59]], [1, 1], difficult=[False, False]),
           _boxes([[20, 20, 29, 29]], [2], difficult=[True])]
    # image 0: a hit (0.9), a miss (0.8), the second gt found (0.7); image 1: a class-2 box on a difficult gt
    preds = [_boxes([[0, 0, 9, 9], [80, 80, 89, 89], [50, 50, 59, 59]], [1, 1, 1], [0.9, 0.8, 0.7]),
             _boxes([[20, 20, 29, 29]], [2], [0.6])]
    prec, rec = calc_detection_voc_prec_rec(gts, preds, iou_thresh=0.5)
    assert len(prec) == 3 and prec[0] is None and rec[0] is None
    np.testing.assert_allclose(prec[1], [1.0, 0.5, 2 / 3])
    np.testing.assert_allclose(rec[1], [0.5, 0.5, 1.0])
    assert len(prec[2]) == 0 and rec[2] is None  # only a difficult gt: left out, no recall
    ap = calc_detection_voc_ap(prec, rec, use_07_metric=False)
    # area under the interpolated curve: recall 0.5 at precision 1, then 0.5 more at 2/3
    assert np.isnan(ap[0]) and np.isnan(ap[2]) and ap[1] == pytest.approx(0.5 + 0.5 * 2 / 3)
    result = eval_detection_voc(preds, gts)
    assert result["map"] == pytest.approx(0.5 + 0.5 * 2 / 3)
