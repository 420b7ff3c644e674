"""Static int8 quantization of an exported graph (tools/export_onnx.py --int8 DATASET), with
onnxruntime's own tools (onnxruntime.quantization): QDQ format, weights per channel (int8),
activations uint8, calibration on the min/max of N images of a dataset named like
DATASETS.TEST, run through the test pipeline.

Only the backbone, FPN and head (the nodes named /backbone/... and /head/...) are quantized;
the post-processing (thresholds, top-k, decoding, NMS) stays in float32.
"""
import numpy as np

from .precision import post_processing_nodes

# detections of the int8 graph on a random input, matched to fp32 ones this loosely (the real
# check is the AP on a dataset: --evaluate)
INT8_SCORE_TOLERANCE = 5e-2
INT8_IOU_MIN = 0.8


class DatasetCalibrationReader:
    """onnxruntime's CalibrationDataReader over the first ``count`` images of ``dataset_name``
    (a DATASETS entry), each resized and normalised by the test pipeline and padded to
    DATALOADER.SIZE_DIVISIBILITY, one at a time as the graph's ``images`` input."""

    def __init__(self, cfg, dataset_name, count):
        from atss_core.data.build import build_dataset
        from atss_core.data.transforms import build_transforms

        self.dataset = build_dataset([dataset_name], build_transforms(cfg, is_train=False), is_train=False,
                                     plus_one=int(cfg.MODEL.LEGACY_PLUS_ONE))[0]
        if len(self.dataset) == 0:
            raise ValueError("calibration dataset {} has no image".format(dataset_name))
        self.count = min(int(count), len(self.dataset))
        self.size_divisible = cfg.DATALOADER.SIZE_DIVISIBILITY
        self.position = 0

    def get_next(self):
        from atss_core.structures import to_image_list

        if self.position >= self.count:
            return None
        image = self.dataset[self.position][0]
        self.position += 1
        return {"images": to_image_list([image], self.size_divisible).tensors.numpy().astype(np.float32)}

    def rewind(self):
        self.position = 0


class ArrayCalibrationReader:
    """A calibration reader over given ``images`` input arrays (the benchmark's random inputs)."""

    def __init__(self, arrays):
        self.arrays = list(arrays)
        self.position = 0

    def get_next(self):
        if self.position >= len(self.arrays):
            return None
        self.position += 1
        return {"images": self.arrays[self.position - 1]}

    def rewind(self):
        self.position = 0


def quantize_int8(source, destination, reader):
    """Writes the int8 (QDQ) version of ``source`` to ``destination``, calibrated on ``reader``;
    returns :func:`describe_quantized` of the result."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def get_next(self):
            return reader.get_next()

        def rewind(self):
            reader.rewind()

    outside = post_processing_nodes(onnx.load(source), source, "quantize")
    quantize_static(source, destination, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=outside,
                    op_types_to_quantize=["Conv", "Add", "Mul", "Resize", "MaxPool"])
    return describe_quantized(destination)


def describe_quantized(path):
    """What was quantized: Conv nodes fed by a DequantizeLinear weight, and the QDQ node count."""
    import onnx

    graph = onnx.load(path).graph
    produced_by = {out: node for node in graph.node for out in node.output}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    quantized = [n for n in convs
                 if n.input[1] in produced_by and produced_by[n.input[1]].op_type == "DequantizeLinear"]
    qdq = sum(1 for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear"))
    return {"quantized_convs": len(quantized), "float_convs": len(convs) - len(quantized), "qdq_nodes": qdq}


def coco_evaluation_of(session_path, cfg, dataset_name, logger=None):
    """The COCO (or VOC) report of an exported graph on ``dataset_name``, each image through the
    ONNX predictor's test pipeline (export/predictor.py), evaluated like test_net.py."""
    from .predictor import ONNXDemo

    demo = ONNXDemo(cfg, session_path, confidence_threshold=0.0)
    return _evaluate_with(demo.compute_prediction, cfg, dataset_name, logger)


def eager_evaluation_of(model, cfg, dataset_name, logger=None):
    """The report of the eager ``model`` on ``dataset_name`` through the same pipeline as
    :func:`coco_evaluation_of`."""
    import torch

    from atss_core.data.transforms import build_transforms
    from atss_core.data.transforms import transforms as T
    from atss_core.structures import to_image_list

    transform = build_transforms(cfg, is_train=False)

    def predict(image):
        images = to_image_list([transform(image, None)[0]], cfg.DATALOADER.SIZE_DIVISIBILITY)
        with torch.no_grad():
            return model(images)[0].resize(T.image_size(image))
    return _evaluate_with(predict, cfg, dataset_name, logger)


def _evaluate_with(predict, cfg, dataset_name, logger):
    import logging

    from atss_core.data.build import build_dataset
    from atss_core.data.datasets.evaluation import evaluate

    dataset = build_dataset([dataset_name], None, is_train=False, plus_one=int(cfg.MODEL.LEGACY_PLUS_ONE))[0]
    predictions = [predict(dataset[i][0]) for i in range(len(dataset))]
    quiet = logger or logging.getLogger("atss_core.export.evaluation")
    return evaluate(dataset, predictions, None, logger=quiet, coco_backend=cfg.TEST.COCO_EVAL_BACKEND,
                    coco_max_dets=cfg.TEST.COCO_MAX_DETS)
