"""The real photographs shipped in data/raccoon: both forms load through the catalog, decode as
real JPEGs and describe the same boxes; the copy agrees with its source when ../shared is there."""
import json
import os
import xml.etree.ElementTree as ET

import pytest
import torch

from atss_core.data.build import build_dataset
from atss_core.data.datasets import COCODataset, PascalVOCDataset
from atss_core.data.datasets.evaluation import evaluate
from tests.conftest import ROOT, shared_path
from tools.pack_real_photos import scaled_box

SHIPPED = os.path.join(ROOT, "data", "raccoon")


@pytest.mark.parametrize("split, images, boxes", [("train", 160, 174), ("val", 40, 43)])
def test_coco_and_voc_forms_load_the_same_real_photographs(split, images, boxes):
    coco, = build_dataset(["raccoon_" + split], transforms=None, is_train=False)
    voc, = build_dataset(["raccoon_voc_" + split], transforms=None, is_train=False)
    assert isinstance(coco, COCODataset) and isinstance(voc, PascalVOCDataset)
    assert len(coco) == len(voc) == images
    assert voc.classes == ("__background__", "raccoon") and coco.categories == {1: "raccoon"}
    coco_by_name = {coco.get_img_info(i)["file_name"]: i for i in range(len(coco))}
    total = 0
    for index in range(len(voc)):
        name = voc.get_img_info(index)["file_name"]
        coco_gt = coco.get_groundtruth(coco_by_name[name])
        voc_gt = voc.get_groundtruth(index)
        assert coco_gt.size == voc_gt.size
        assert torch.equal(coco_gt.bbox, voc_gt.bbox), name  # VOC corners - 1 == COCO x, y, x + w - 1, y + h - 1
        assert coco_gt.get_field("labels").tolist() == voc_gt.get_field("labels").tolist() == [1] * len(voc_gt)
        total += len(voc_gt)
    assert total == boxes


def test_every_shipped_photograph_decodes_at_its_annotated_size():
    voc = PascalVOCDataset(SHIPPED, "val")
    for index in range(len(voc)):
        image, target, _ = voc[index]
        info = voc.get_img_info(index)
        assert image.dtype.name == "uint8" and image.shape == (info["height"], info["width"], 3)
        assert max(image.shape[:2]) <= 512 and image.std() > 10  # a real picture, not a blank
        boxes = target.bbox
        assert len(boxes) > 0 and (boxes[:, 2:] > boxes[:, :2]).all()
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] < info["width"]).all() and (boxes[:, 3] < info["height"]).all()


def test_perfect_predictions_score_ap_1_on_the_shipped_set():
    coco, = build_dataset(["raccoon_val"], transforms=None, is_train=False)
    predictions = []
    for index in range(len(coco)):
        gt = coco.get_groundtruth(index)
        gt.add_field("scores", torch.ones(len(gt)))
        predictions.append(gt)
    report = evaluate(coco, predictions, output_folder=None)
    assert report["bbox"]["AP"] == pytest.approx(1.0)


def test_scaled_box_keeps_inclusive_corners_inside_the_image():
    assert scaled_box(1, 1, 1000, 500, 0.5, 0.5, 500, 250) == (1, 1, 500, 250)
    assert scaled_box(101, 51, 300, 200, 0.5, 0.5, 500, 250) == (51, 26, 150, 100)
    assert scaled_box(10, 10, 10, 10, 0.01, 0.01, 10, 10) == (1, 1, 1, 1)  # never inverted


def test_the_shipped_copy_matches_its_source():
    source = shared_path("data", "raccoon")
    with open(os.path.join(SHIPPED, "annotations", "instances_val.json")) as f:
        shipped = json.load(f)
    sizes = {img["file_name"]: (img["width"], img["height"]) for img in shipped["images"]}
    for name, (width, height) in sizes.items():
        root = ET.parse(os.path.join(source, "Annotations", name.replace(".jpg", ".xml"))).getroot()
        src_w, src_h = int(root.find("size/width").text), int(root.find("size/height").text)
        scale = min(1.0, 512.0 / max(src_w, src_h))
        assert (width, height) == (round(src_w * scale), round(src_h * scale)), name
        if scale == 1.0:
            with open(os.path.join(source, "JPEGImages", name), "rb") as a, \
                    open(os.path.join(SHIPPED, "JPEGImages", name), "rb") as b:
                assert a.read() == b.read(), name
