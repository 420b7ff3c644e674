from .coco import coco_evaluation
from .coco.coco_eval import COCO_MAX_DETS, do_coco_evaluation
from .voc import voc_evaluation
from .voc.voc_eval import do_voc_evaluation


def evaluate(dataset, predictions, output_folder, logger=None, coco_backend="pycocotools", coco_max_dets=COCO_MAX_DETS):
    """Evaluates ``predictions`` (one BoxList per dataset index) with the dataset's metric;
    ``coco_backend``: see coco_eval.BACKENDS; ``coco_max_dets``: TEST.COCO_MAX_DETS."""
    from atss_core.data.datasets.coco import COCODataset
    from atss_core.data.datasets.voc import PascalVOCDataset

    if isinstance(dataset, COCODataset):
        return coco_evaluation(dataset, predictions, output_folder, logger=logger, backend=coco_backend,
                               max_dets=coco_max_dets)
    if isinstance(dataset, PascalVOCDataset):
        return voc_evaluation(dataset, predictions, output_folder, logger=logger)
    raise NotImplementedError("no evaluation for {} yet".format(type(dataset).__name__))


__all__ = ["evaluate", "coco_evaluation", "voc_evaluation", "do_coco_evaluation", "do_voc_evaluation"]
