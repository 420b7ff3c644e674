"""Our COCO evaluation must report what pycocotools reports on the same detections."""
import contextlib
import io
import json

import cv2
import numpy as np
import pytest
import torch
from pycocotools.cocoeval import COCOeval

from atss_core.data.datasets import COCODataset
from atss_core.data.datasets.evaluation import evaluate
from atss_core.structures import BoxList

from ..data.test_coco_dataset import write_coco


def test_metrics_equal_pycocotools(tmp_path):
    ann, root = write_coco(tmp_path)
    dataset = COCODataset(ann, root, remove_images_without_annotations=False)
    # image 0 (id 10): dog [2,3,10,5] and cat [20,10,15,15]; predictions in a 2x resized frame
    hit_dog = [4.0, 6.0, 4.0 + 2 * 10 - 1, 6.0 + 2 * 5 - 1]
    off_cat = [40.0, 20.0, 40.0 + 2 * 12 - 1, 20.0 + 2 * 15 - 1]
    prediction = BoxList(torch.tensor([hit_dog, off_cat, [0.0, 0.0, 10.0, 10.0]]), (80, 60))
    prediction.add_field("scores", torch.tensor([0.9, 0.8, 0.3]))
    prediction.add_field("labels", torch.tensor([2, 1, 1]))
    empty = BoxList(torch.zeros(0, 4), (50, 20))
    empty.add_field("scores", torch.zeros(0))
    empty.add_field("labels", torch.zeros(0, dtype=torch.int64))
    report = evaluate(dataset, [prediction, empty, empty], str(tmp_path / "out"))

    results = json.loads((tmp_path / "out" / "bbox.json").read_text())
    assert [r["category_id"] for r in results] == [7, 3, 3] and all(r["image_id"] == 10 for r in results)
    # resized back to the 40x30 original (corners scaled by 0.5, as the official BoxList.resize)
    # and written as xywh with +1 widths: [4, 6, 23, 15] -> [2, 3, 11.5, 7.5] -> w = 10.5
    assert results[0]["bbox"] == pytest.approx([2.0, 3.0, 10.5, 5.5])
    with contextlib.redirect_stdout(io.StringIO()):
        reference = COCOeval(dataset.coco, dataset.coco.loadRes(results), "bbox")
        reference.params.imgIds = sorted(dataset.ids)
        reference.evaluate()
        reference.accumulate()
        reference.summarize()
    assert [report["bbox"][k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")] == \
        pytest.approx(list(reference.stats[:6]))
    # the dog box has IoU 50 / 57.75 = 0.866 with its gt: a hit at 8 of the 10 IoU thresholds
    assert report["per_class"]["dog"] == pytest.approx(0.8)
    assert 0 < report["bbox"]["AP"] < 1
    saved = json.loads((tmp_path / "out" / "coco_metrics.json").read_text())
    assert saved["bbox"] == pytest.approx(report["bbox"])


def test_no_detections_gives_zero_ap(tmp_path):
    ann, root = write_coco(tmp_path)
    dataset = COCODataset(ann, root, remove_images_without_annotations=True)
    empty = BoxList(torch.zeros(0, 4), (40, 30))
    empty.add_field("scores", torch.zeros(0))
    empty.add_field("labels", torch.zeros(0, dtype=torch.int64))
    assert evaluate(dataset, [empty], None)["bbox"]["AP"] == 0.0


def write_hand_case(tmp_path):
    """One 300x150 image. Class "small" (json id 5, listed first): a 20x20 gt, detected with
    IoU 15.5 / 24.5 = 0.633 (a hit at IoU thresholds 0.50, 0.55, 0.60 only). Class "large"
    (json id 2): two 100x100 gts, both detected exactly."""
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    cv2.imwrite(str(images_dir / "a.jpg"), np.zeros((150, 300, 3), dtype=np.uint8))
    annotations = [
        {"id": 1, "image_id": 1, "category_id": 5, "bbox": [0, 0, 20, 20], "iscrowd": 0, "area": 400},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 40, 100, 100], "iscrowd": 0, "area": 10000},
        {"id": 3, "image_id": 1, "category_id": 2, "bbox": [150, 40, 100, 100], "iscrowd": 0, "area": 10000},
    ]
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 300, "height": 150}], "annotations": annotations,
            "categories": [{"id": 5, "name": "small"}, {"id": 2, "name": "large"}]}
    (tmp_path / "ann.json").write_text(json.dumps(data))
    return COCODataset(str(tmp_path / "ann.json"), str(images_dir), remove_images_without_annotations=False)


def test_metrics_on_a_case_known_by_hand(tmp_path):
    dataset = write_hand_case(tmp_path)
    # contiguous ids follow the json's category order, as officially (checkpoint channels depend on it)
    assert dataset.json_category_id_to_contiguous_id == {5: 1, 2: 2}
    small, large = 1, 2
    # xyxy in the original frame (x2 = x + w - 1), given in a 2x resized frame
    boxes = torch.tensor([[4.5, 0, 23.5, 19], [0, 40, 99, 139], [150, 40, 249, 139]]) * 2
    prediction = BoxList(boxes, (600, 300))
    prediction.add_field("scores", torch.tensor([0.7, 0.9, 0.8]))
    prediction.add_field("labels", torch.tensor([small, large, large]))
    report = evaluate(dataset, [prediction], None)
    # AP: small 3/10, large 1 -> 0.65; AP50: both 1; AP75: small 0, large 1; small objects are
    # only class "small" (0.3), large objects only class "large" (1); no medium objects (-1)
    expected = {"AP": 0.65, "AP50": 1.0, "AP75": 0.5, "APs": 0.3, "APm": -1.0, "APl": 1.0}
    assert report["bbox"] == pytest.approx(expected)
    # per class over all areas with 100 detections (with 1 detection "large" would be about 0.5)
    assert report["per_class"] == pytest.approx({"large": 1.0, "small": 0.3})


def hand_case_predictions(scale=2):
    boxes = torch.tensor([[4.5, 0, 23.5, 19], [0, 40, 99, 139], [150, 40, 249, 139]]) * scale
    prediction = BoxList(boxes, (300 * scale, 150 * scale))
    prediction.add_field("scores", torch.tensor([0.7, 0.9, 0.8]))
    prediction.add_field("labels", torch.tensor([1, 2, 2]))
    return prediction


def test_official_coco_functions_on_the_hand_case(tmp_path, caplog):
    from atss_core.data.datasets.evaluation.coco.coco_eval import (COCOResults, check_expected_results,
                                                                    compute_thresholds_for_classes,
                                                                    evaluate_box_proposals,
                                                                    evaluate_predictions_on_coco,
                                                                    prepare_for_coco_detection)

    dataset = write_hand_case(tmp_path)
    records = prepare_for_coco_detection([hand_case_predictions()], dataset)
    written = json.loads(json.dumps(records))  # pycocotools' loadRes adds fields to the records it gets
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval = evaluate_predictions_on_coco(dataset.coco, records, str(tmp_path / "bbox.json"))
    assert json.loads((tmp_path / "bbox.json").read_text()) == written
    results = COCOResults("bbox")
    assert results.results["bbox"]["AP"] == -1
    results.update(coco_eval)
    assert results.results["bbox"]["AP"] == pytest.approx(0.65)
    # the best F-measure of each class is 1 (every gt found at IoU 0.5, nothing else), reached at its
    # lowest score; categories in COCOeval's order (json ids 2 "large", then 5 "small")
    f_best, thresholds = compute_thresholds_for_classes(coco_eval)
    assert f_best.tolist() == pytest.approx([1.0, 1.0]) and thresholds.tolist() == pytest.approx([0.8, 0.7])
    assert check_expected_results(results, [("bbox", "AP", (0.65, 0.01))], 4)
    assert not check_expected_results(results, [("bbox", "AP", (0.5, 0.01))], 4)
    assert "OUT OF RANGE" in caplog.text
    # proposal recall: the small box (IoU 0.633) is recalled at 0.50-0.60 only, the large ones at every threshold
    proposals = evaluate_box_proposals([hand_case_predictions()], dataset)
    assert proposals["num_pos"] == 3
    assert proposals["recalls"].tolist() == pytest.approx([1.0] * 3 + [2 / 3] * 7)
    assert evaluate_box_proposals([hand_case_predictions()], dataset, area="small")["num_pos"] == 1
    with pytest.raises(ValueError, match="unknown area range"):
        evaluate_box_proposals([hand_case_predictions()], dataset, area="tiny")
