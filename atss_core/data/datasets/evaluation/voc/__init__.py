"""Pascal VOC evaluation (the official package path)."""
import logging

from .voc_eval import do_voc_evaluation


def voc_evaluation(dataset, predictions, output_folder, box_only=False, logger=None, **_):
    """VOC mAP; the COCO-only arguments (iou_types, expected results) are accepted and not used, as officially."""
    if box_only:
        logging.getLogger("atss_core.inference").warning("VOC evaluation does not evaluate box_only; ignored")
    return do_voc_evaluation(dataset, predictions, output_folder, logger)
