"""TEST.COCO_EVAL_BACKEND: faster-coco-eval gives the same 12 COCO numbers and the same
per-class table as pycocotools on the same detections."""
import pytest
import torch

from atss_core.data.datasets import COCODataset
from atss_core.data.datasets.evaluation import evaluate
from atss_core.structures import BoxList

from ..data.test_coco_dataset import write_coco

from atss_core.benchmark import coco_eval as benchmark_coco_eval


@pytest.mark.parametrize("seed", [0, 1])
def test_both_backends_give_the_same_twelve_numbers(seed):
    gt, results = benchmark_coco_eval.generate_detection_set(60, 40, num_categories=6, seed=seed)
    ours, _ = benchmark_coco_eval.evaluate_with("pycocotools", gt, results)
    faster, _ = benchmark_coco_eval.evaluate_with("faster-coco-eval", gt, results)
    assert len(ours) == 12 and 0 < ours[0] < 1 and len(set(ours)) > 6  # a case where the numbers differ
    assert faster == pytest.approx(ours, abs=1e-12)


def test_the_evaluation_report_is_the_same_through_either_backend(tmp_path):
    ann, root = write_coco(tmp_path)
    dataset = COCODataset(ann, root, remove_images_without_annotations=False)
    prediction = BoxList(torch.tensor([[4.0, 6.0, 23.0, 15.0], [40.0, 20.0, 63.0, 49.0], [0.0, 0.0, 10.0, 10.0]]),
                         (80, 60))
    prediction.add_field("scores", torch.tensor([0.9, 0.8, 0.3]))
    prediction.add_field("labels", torch.tensor([2, 1, 1]))
    empty = BoxList(torch.zeros(0, 4), (50, 20))
    empty.add_field("scores", torch.zeros(0))
    empty.add_field("labels", torch.zeros(0, dtype=torch.int64))
    reports = {backend: evaluate(dataset, [prediction, empty, empty], None, coco_backend=backend)
               for backend in ("pycocotools", "faster-coco-eval")}
    assert reports["faster-coco-eval"]["bbox"] == pytest.approx(reports["pycocotools"]["bbox"], abs=1e-12)
    assert reports["faster-coco-eval"]["per_class"] == pytest.approx(reports["pycocotools"]["per_class"],
                                                                     abs=1e-12, nan_ok=True)
    assert reports["pycocotools"]["per_class"]["dog"] == pytest.approx(0.8)


def test_an_unknown_backend_is_named():
    from atss_core.data.datasets.evaluation.coco.coco_eval import check_backend

    with pytest.raises(ValueError, match="TEST.COCO_EVAL_BACKEND must be one of pycocotools, faster-coco-eval"):
        check_backend("fast")
