from .coco_eval import do_coco_evaluation


def evaluate(dataset, predictions, output_folder, logger=None):
    """Evaluates ``predictions`` (one BoxList per dataset index) with the dataset's metric."""
    from ..coco import COCODataset

    if isinstance(dataset, COCODataset):
        return do_coco_evaluation(dataset, predictions, output_folder, logger=logger)
    raise NotImplementedError("no evaluation for {} yet".format(type(dataset).__name__))


__all__ = ["evaluate", "do_coco_evaluation"]
