"""COCO evaluation (the official package path)."""
from .coco_eval import COCO_MAX_DETS, do_coco_evaluation


def coco_evaluation(dataset, predictions, output_folder, box_only=False, iou_types=("bbox",), expected_results=(),
                    expected_results_sigma_tol=4, logger=None, backend="pycocotools",
                    max_dets=COCO_MAX_DETS):
    return do_coco_evaluation(dataset, predictions, box_only, output_folder, iou_types, expected_results,
                              expected_results_sigma_tol, logger=logger, backend=backend, max_dets=max_dets)
