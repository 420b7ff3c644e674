"""TEST.COCO_MAX_DETS: COCOeval keeps that many detections per image on both backends, and the
summary (AP at the largest, AR@ each) follows it; COCO's default summary is unchanged."""
import json

import cv2
import numpy as np
import pytest
import torch

from atss_core.benchmark import coco_eval as benchmark_coco_eval
from atss_core.data.datasets import COCODataset
from atss_core.data.datasets.evaluation import evaluate
from atss_core.data.datasets.evaluation.coco.coco_eval import (check_max_dets, coco_evaluator, metric_names,
                                                               summarize_boxes)

BACKENDS = ("pycocotools", "faster-coco-eval")


def write_dense_coco(tmp_path, num_objects=300, size=1000, seed=0):
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(tmp_path / "dense.jpg"), np.zeros((size, size, 3), dtype=np.uint8))
    annotations = []
    for i in range(num_objects):
        w, h = (int(v) for v in rng.integers(10, 60, 2))
        x, y = (int(v) for v in rng.integers(0, size - 60, 2))
        annotations.append({"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [x, y, w, h], "area": w * h,
                            "iscrowd": 0})
    path = tmp_path / "dense.json"
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "dense.jpg", "width": size, "height": size}],
                                "annotations": annotations, "categories": [{"id": 1, "name": "item"}]}))
    return COCODataset(str(path), str(tmp_path), remove_images_without_annotations=False)


def ground_truth_as_detections(dataset):
    prediction = dataset.get_groundtruth(0)
    prediction.add_field("scores", torch.linspace(1.0, 0.5, len(prediction)))
    return prediction


@pytest.mark.parametrize("backend", BACKENDS)
def test_three_hundred_objects_score_one_only_past_a_hundred_detections(tmp_path, backend):
    dataset = write_dense_coco(tmp_path)
    prediction = ground_truth_as_detections(dataset)
    assert len(prediction) == 300
    coco = evaluate(dataset, [prediction], None, coco_backend=backend)
    dense = evaluate(dataset, [prediction], None, coco_backend=backend, coco_max_dets=(1, 100, 300))
    assert dense["bbox"]["AP"] == pytest.approx(1.0) and dense["bbox"]["AP50"] == pytest.approx(1.0)
    assert dense["bbox_recall"]["AR@300"] == pytest.approx(1.0)
    assert dense["bbox_recall"]["AR@100"] == pytest.approx(100 / 300, abs=1e-6)
    assert coco["bbox"]["AP"] < 0.5  # COCO's 100 detections find a third of the objects
    assert "bbox_recall" not in coco  # the default report is unchanged


def test_both_backends_agree_past_a_hundred(tmp_path):
    dataset = write_dense_coco(tmp_path, seed=1)
    prediction = ground_truth_as_detections(dataset)
    # drop a fifth and jitter the rest, so that the numbers are not all 1
    keep = torch.arange(len(prediction)) % 5 != 0
    prediction = prediction[keep]
    g = torch.Generator().manual_seed(0)
    prediction.bbox += torch.randn(prediction.bbox.shape, generator=g) * 2
    reports = [evaluate(dataset, [prediction], None, coco_backend=b, coco_max_dets=(1, 10, 1000)) for b in BACKENDS]
    assert 0.2 < reports[0]["bbox"]["AP"] < 0.95
    assert reports[1]["bbox"] == pytest.approx(reports[0]["bbox"], abs=1e-12)
    assert reports[1]["bbox_recall"] == pytest.approx(reports[0]["bbox_recall"], abs=1e-12)
    assert list(reports[0]["bbox_recall"]) == ["AR@1", "AR@10", "AR@1000", "ARs@1000", "ARm@1000", "ARl@1000"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_our_summary_equals_the_evaluators_own_at_coco_max_dets(backend):
    from pycocotools.coco import COCO

    gt, results = benchmark_coco_eval.generate_detection_set(40, 30, num_categories=5, seed=2)
    coco_gt = COCO()
    coco_gt.dataset = gt
    coco_gt.createIndex()
    evaluator = coco_evaluator(backend, coco_gt, results)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    stats, lines = summarize_boxes(evaluator)
    assert len(set(np.round(stats, 6))) > 6
    np.testing.assert_allclose(stats, evaluator.stats, atol=1e-12)
    assert lines.count("maxDets=100") == 10 and "maxDets=  1" in lines


def test_metric_names_follow_max_dets():
    assert metric_names((1, 10, 100))[6:] == ["AR@1", "AR@10", "AR@100", "ARs@100", "ARm@100", "ARl@100"]


@pytest.mark.parametrize("bad", [(1, 10), (10, 1, 100), (0, 10, 100), (1, 10, 10), (1, 10, 2.5)])
def test_bad_max_dets_are_named(bad):
    with pytest.raises(ValueError, match="TEST.COCO_MAX_DETS must be three increasing positive integers"):
        check_max_dets(bad)
