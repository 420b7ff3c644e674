"""ATSSDemo: a config + weights -> detections on OpenCV (BGR numpy) images, and drawings of them."""
import numpy as np
import torch

from atss_core.data.transforms import build_transforms
from atss_core.engine.tiling import check_tile_settings, im_detect_tiled
from atss_core.modeling.detector import build_detection_model
from atss_core.modeling.fusion import optimize_for_inference
from atss_core.structures.image_list import to_image_list
from atss_core.utils.checkpoint import DetectronCheckpointer
from atss_core.utils.drawing import draw_box, palette


# the 80 COCO categories in contiguous-label order (label k = COCO_CLASSES[k]), used when a
# config has 81 classes and no names are given (the official checkpoints)
COCO_CLASSES = (
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep",
    "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich",
    "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed",
    "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
    "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)


def parse_class_names(text):
    """"cat, dog" (the names of classes 1..C, as on the demos' command lines) -> ["__background__",
    "cat", "dog"]; None for an empty text (the defaults then apply)."""
    if not text:
        return None
    return ["__background__"] + [name.strip() for name in text.split(",")]


def default_class_names(num_classes):
    """COCO's names for an 81-class model, "class k" otherwise."""
    if num_classes == len(COCO_CLASSES):
        return list(COCO_CLASSES)
    return ["__background__"] + ["class {}".format(k) for k in range(1, num_classes)]


class ATSSDemo:
    """Runs a detector on single BGR images.

    ``confidence_threshold``: a float for every class, or {class name or label: threshold}
    (classes not listed use ``default_threshold``). ``class_names``: names indexed by label
    (label 0 = background); defaults to the names the weights file records (checkpoints of
    ours and mmdetection's), else COCO's names for 81 classes, "class k" otherwise."""

    def __init__(self, cfg, weights=None, confidence_threshold=0.5, class_names=None, default_threshold=0.5,
                 device=None):
        self.cfg = cfg.clone()
        check_tile_settings(self.cfg)
        device = device or (cfg.MODEL.DEVICE if torch.cuda.is_available() or cfg.MODEL.DEVICE == "cpu" else "cpu")
        self.device = torch.device(device)
        self.model = build_detection_model(self.cfg).to(self.device).eval()
        weights = weights or self.cfg.MODEL.WEIGHT
        if not weights:
            raise ValueError("ATSSDemo needs weights: pass weights= or set MODEL.WEIGHT")
        checkpointer = DetectronCheckpointer(self.cfg, self.model)
        checkpointer.load(weights, use_latest=False, strict=True)
        if self.cfg.TEST.OPTIMIZE_FOR_INFERENCE:
            optimize_for_inference(self.model, channels_last=self.device.type == "cpu")
        # given names override the ones the weights file records
        self._set_up_labels(confidence_threshold, class_names or checkpointer.class_names, default_threshold)

    def _set_up_labels(self, confidence_threshold, class_names, default_threshold):
        """Transforms, class names and per-class thresholds (shared with the ONNX predictor)."""
        self.transforms = build_transforms(self.cfg, is_train=False)
        num_classes = self.cfg.MODEL.ATSS.NUM_CLASSES
        self.class_names = list(class_names) if class_names else default_class_names(num_classes)
        if len(self.class_names) != num_classes:
            raise ValueError("{} class names given for MODEL.ATSS.NUM_CLASSES = {} (background included)".format(
                len(self.class_names), num_classes))
        self.thresholds = self._thresholds(confidence_threshold, default_threshold)

    def _thresholds(self, confidence_threshold, default_threshold):
        if isinstance(confidence_threshold, (int, float)):
            return torch.full((len(self.class_names),), float(confidence_threshold))
        thresholds = torch.full((len(self.class_names),), float(default_threshold))
        for key, value in confidence_threshold.items():
            label = key if isinstance(key, int) else self.class_names.index(key)
            thresholds[label] = float(value)
        return thresholds

    def compute_prediction(self, image):
        """All detections (BoxList with "scores", "labels") in the frame of ``image``."""
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError("expected an HxWx3 BGR image array, got {}".format(
                getattr(image, "shape", type(image).__name__)))
        if self.cfg.TEST.TILE.ENABLED:
            return self.detect_tiled(image)
        tensor, _ = self.transforms(image, None)
        images = to_image_list([tensor], self.cfg.DATALOADER.SIZE_DIVISIBILITY)
        prediction = self.detect(images)
        height, width = image.shape[:2]
        return prediction.resize((width, height))

    def detect_tiled(self, image):
        """TEST.TILE: the whole image and its overlapping tiles, merged (engine/tiling.py)."""
        return im_detect_tiled(self.model, [image], self.device, self.cfg)[0]

    def detect(self, images):
        """The model's detections (a BoxList on the CPU) for a one-image ImageList."""
        with torch.no_grad():
            return self.model(images.to(self.device))[0].to(torch.device("cpu"))

    def select_top_predictions(self, predictions):
        """Detections above their class threshold, by decreasing score."""
        scores, labels = predictions.get_field("scores"), predictions.get_field("labels")
        keep = torch.nonzero(scores >= self.thresholds[labels]).squeeze(1)
        predictions = predictions[keep]
        order = predictions.get_field("scores").sort(descending=True)[1]
        return predictions[order]

    def overlay(self, image, predictions):
        """A copy of ``image`` with boxes, class names and scores drawn."""
        canvas = image.copy()
        for box, score, label in zip(predictions.bbox.tolist(), predictions.get_field("scores").tolist(),
                                     predictions.get_field("labels").tolist()):
            draw_box(canvas, box, palette(label), "{} {:.2f}".format(self.class_names[label], score))
        return canvas

    def run_on_opencv_image(self, image):
        """(annotated image, selected detections)."""
        predictions = self.select_top_predictions(self.compute_prediction(image))
        return self.overlay(image, predictions), predictions


def detections_to_records(detections, class_names):
    """[{"box_xyxy", "score", "label" (a name)}] of a BoxList with "scores" and "labels"."""
    # 1e-4 px and 1e-6 in score: finer than any comparison with another implementation needs
    return [{"box_xyxy": [round(v, 4) for v in box], "score": round(score, 6), "label": class_names[label]}
            for box, score, label in zip(detections.bbox.tolist(), detections.get_field("scores").tolist(),
                                         detections.get_field("labels").tolist())]
