"""ONNXDemo: the exported detector (export/onnx.py) run by onnxruntime, with the same
pre-processing, thresholds and drawings as ATSSDemo."""
import os

import torch

from atss_core.engine.predictor import ATSSDemo
from atss_core.export.onnx import read_class_names
from atss_core.structures.bounding_box import BoxList


class ONNXDemo(ATSSDemo):
    """``onnx_path``: a file written by tools/export_onnx.py (export/onnx.py) with the same config ``cfg``."""

    def __init__(self, cfg, onnx_path, confidence_threshold=0.5, class_names=None, default_threshold=0.5):
        import onnxruntime

        if not os.path.isfile(onnx_path):
            raise FileNotFoundError("ONNX model not found: {}".format(onnx_path))
        self.cfg = cfg.clone()
        if self.cfg.TEST.TILE.ENABLED:
            raise ValueError("TEST.TILE is not supported by the ONNX predictor (the graph holds its own NMS and "
                             "cap); run the eager predictor for tiled inference")
        self.device = torch.device("cpu")
        self.session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        self._set_up_labels(confidence_threshold, class_names or read_class_names(self.session), default_threshold)

    def detect(self, images):
        boxes, scores, labels, counts = self.session.run(None, {"images": images.tensors.numpy()})
        count = int(counts[0])
        height, width = images.image_sizes[0]
        plus_one = 1 if self.cfg.MODEL.LEGACY_PLUS_ONE else 0  # mmdetection's boxes reach W and H
        prediction = BoxList(torch.from_numpy(boxes[0, :count]), (width, height), mode="xyxy", plus_one=plus_one)
        # the graph clips to the padded input; the image itself may be smaller
        prediction = prediction.clip_to_image(remove_empty=False)
        prediction.add_field("scores", torch.from_numpy(scores[0, :count]))
        prediction.add_field("labels", torch.from_numpy(labels[0, :count]))
        return prediction
