"""ONNXDemo: the exported detector (export/onnx.py) run by onnxruntime, with the same
pre-processing, thresholds and drawings as ATSSDemo."""
import os

import torch

from atss_core.engine.predictor import ATSSDemo
from atss_core.export.onnx import read_class_names
from atss_core.export.raw import postprocess, read_settings
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
        tensors = self._fit_static_input(images.tensors)
        outputs = self.session.run(None, {"images": tensors.numpy()})
        if self.session.get_outputs()[0].name == "cls_p3":  # a --no-nms graph: export/raw.py's post-processing
            boxes, scores, labels = (a[None] for a in postprocess(outputs, read_settings(self.session))[0])
            counts = [len(scores[0])]
        else:
            boxes, scores, labels, counts = outputs
        count = int(counts[0])
        height, width = images.image_sizes[0]
        plus_one = 1 if self.cfg.MODEL.LEGACY_PLUS_ONE else 0  # mmdetection's boxes reach W and H
        prediction = BoxList(torch.from_numpy(boxes[0, :count]), (width, height), mode="xyxy", plus_one=plus_one)
        # the graph clips to the padded input; the image itself may be smaller
        prediction = prediction.clip_to_image(remove_empty=False)
        prediction.add_field("scores", torch.from_numpy(scores[0, :count]))
        prediction.add_field("labels", torch.from_numpy(labels[0, :count]))
        return prediction

    def _fit_static_input(self, tensors):
        """A graph exported with --static takes one fixed H x W: the padded image goes in at its
        top-left corner (zeros around it, as the model's own padding); a larger one is refused."""
        shape = self.session.get_inputs()[0].shape
        if not all(isinstance(d, int) for d in shape[2:]):
            return tensors
        height, width = shape[2], shape[3]
        if tensors.shape[2] > height or tensors.shape[3] > width:
            raise ValueError("this ONNX graph takes a fixed {}x{} input (--static) but the resized image is {}x{}: "
                             "lower INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST or export with a larger --static".format(
                                 height, width, tensors.shape[2], tensors.shape[3]))
        return torch.nn.functional.pad(tensors, (0, width - tensors.shape[3], 0, height - tensors.shape[2]))
