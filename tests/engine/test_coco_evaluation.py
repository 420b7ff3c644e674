"""Our COCO evaluation must report what pycocotools reports on the same detections."""
import contextlib
import io
import json

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
