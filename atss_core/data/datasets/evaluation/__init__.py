from .coco_eval import do_coco_evaluation
from .voc_eval import do_voc_evaluation


def evaluate(dataset, predictions, output_folder, logger=None, coco_backend="pycocotools"):
    """Evaluates ``predictions`` (one BoxList per dataset index) with the dataset's metric;
    ``coco_backend``: see coco_eval.BACKENDS."""
    from ..coco import COCODataset
    from ..voc import PascalVOCDataset

    if isinstance(dataset, COCODataset):
        return do_coco_evaluation(dataset, predictions, output_folder, logger=logger, backend=coco_backend)
    if isinstance(dataset, PascalVOCDataset):
        return do_voc_evaluation(dataset, predictions, output_folder, logger=logger)
    raise NotImplementedError("no evaluation for {} yet".format(type(dataset).__name__))


__all__ = ["evaluate", "do_coco_evaluation", "do_voc_evaluation"]
