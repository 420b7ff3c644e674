"""TensorBoard event files under OUTPUT_DIR (`tensorboard --logdir OUTPUT_DIR`): training
scalars every iteration, and after each evaluation its COCO/VOC metrics, the per-class AP and
a few validation images with their predicted boxes. Written by the main process only;
TENSORBOARD.ENABLED False turns it off."""
import logging

import numpy as np
import torch

from atss_core.config.paths_catalog import dataset_folder_name
from atss_core.utils.comm import get_rank

DRAWN_SCORE_THRESHOLD = 0.3  # boxes drawn on the validation images


class NullTracker:
    """What every process but the main one (or a run with tracking off) gets."""

    def log_training(self, iteration, values):
        pass

    def log_evaluation(self, dataset_name, report, iteration, dataset=None, predictions=None, class_names=None):
        pass

    def close(self):
        pass


class TensorboardTracker(NullTracker):
    def __init__(self, log_dir, num_images=4):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=log_dir)
        self.num_images = num_images

    def log_training(self, iteration, values):
        """``values``: losses, "loss" (their sum), "lr", "time", "data", "memory_mb"."""
        for name, value in values.items():
            group = "train" if name.startswith("loss") else "train_stats"
            self.writer.add_scalar("{}/{}".format(group, name), float(value), iteration)

    def log_evaluation(self, dataset_name, report, iteration, dataset=None, predictions=None, class_names=None):
        """``class_names`` (the model's, label order) name the drawn boxes; else the dataset's."""
        tag = dataset_folder_name(dataset_name)
        for name, value in report.get("bbox", {}).items():
            self.writer.add_scalar("eval_{}/{}".format(tag, name), float(value), iteration)
        for name, value in report.get("per_class", {}).items():
            if value == value:  # nan: no ground truth of that class
                self.writer.add_scalar("eval_{}_per_class/{}".format(tag, name), float(value), iteration)
        if dataset is not None and predictions is not None:
            for index in range(min(self.num_images, len(predictions))):
                self._log_image(tag, dataset, index, predictions[index], iteration, class_names)
        self.writer.flush()

    def _log_image(self, tag, dataset, index, prediction, iteration, class_names=None):
        from atss_core.data.datasets.image_io import read_image_bgr

        try:
            # the pixels the predictions were made on (INPUT.EXIF_ORIENTATION, held by the dataset)
            image = read_image_bgr(dataset.image_path(index), getattr(dataset, "exif_orientation", False))
        except (OSError, ValueError, AttributeError) as error:  # a picture is not worth stopping for
            logging.getLogger(__name__).warning("no TensorBoard picture for image %d: %s", index, error)
            return
        height, width = image.shape[:2]
        prediction = prediction.resize((width, height))
        keep = prediction.get_field("scores") >= DRAWN_SCORE_THRESHOLD
        boxes = prediction.bbox[keep]
        names = getattr(dataset, "categories", {})
        labels = []
        for label, score in zip(prediction.get_field("labels")[keep].tolist(),
                                prediction.get_field("scores")[keep].tolist()):
            name = class_names[label] if class_names and label < len(class_names) else class_name(dataset, label,
                                                                                                   names)
            labels.append("{} {:.2f}".format(name, score))
        rgb = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1])).permute(2, 0, 1)
        self.writer.add_image_with_boxes("eval_{}_images/{}".format(tag, index), rgb, boxes, iteration,
                                         labels=labels or None)

    def close(self):
        self.writer.close()


def class_name(dataset, label, names):
    """The name of contiguous ``label`` in a COCO (json id mapping) or VOC (index) dataset."""
    mapping = getattr(dataset, "contiguous_category_id_to_json_id", None)
    key = mapping.get(label, label) if mapping else label
    return str(names.get(key, label))


def make_tracker(cfg):
    if not cfg.TENSORBOARD.ENABLED or not cfg.OUTPUT_DIR or get_rank() != 0:
        return NullTracker()
    return TensorboardTracker(cfg.OUTPUT_DIR, cfg.TENSORBOARD.NUM_IMAGES)
