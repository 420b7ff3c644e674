"""The graph without NMS (tools/export_onnx.py --no-nms), for runtimes with their own NMS
(TensorRT's EfficientNMS, OpenVINO), and the numpy post-processing that turns its outputs into
exactly the detections of the full graph (export/onnx.py).

Outputs, per FPN level l = 3..7 (R = H_l * W_l * A rows in the anchors' (y, x, anchor) order):

- ``cls_p{l}`` [N, R, C]: sigmoid of the class logits;
- ``centerness_p{l}`` [N, R]: sigmoid of the centerness logits;
- ``boxes_p{l}`` [N, R, 4]: every anchor's box, decoded and clipped to the input (xyxy).

A detection of the full graph is a (row, class) whose cls exceeds MODEL.ATSS.INFERENCE_TH,
among the PRE_NMS_TOP_N of its level ranked by cls x centerness (by cls alone with
POSTPROCESS "mmdet"), scored sqrt(cls x centerness) (cls x centerness for mmdet); then
multi-label NMS (legacy +1 IoU; plain IoU for mmdet; one NMS over all classes with
MODEL.ATSS.NMS_CLASS_AGNOSTIC) and the best TEST.DETECTIONS_PER_IMG. :func:`postprocess`
does that in numpy, with the settings the file records in its metadata
(:func:`read_settings`).
"""
import json

import numpy as np

from atss_core.modeling.rpn.anchor_generator import anchor_grid
from atss_core.modeling.rpn.utils import permute_and_flatten
from atss_core.structures.bounding_box import clip_boxes_to_image

from .onnx import ExportableATSS

SETTINGS_METADATA = "postprocess_settings"  # the file's metadata entry: what postprocess() needs, as JSON
FIRST_LEVEL = 3


def output_names(num_levels):
    names = []
    for level in range(FIRST_LEVEL, FIRST_LEVEL + num_levels):
        names += ["cls_p{}".format(level), "centerness_p{}".format(level), "boxes_p{}".format(level)]
    return names


class RawATSS(ExportableATSS):
    """The detector up to the per-level scores and decoded boxes (see the module docstring)."""

    def settings(self):
        """What :func:`postprocess` needs, as recorded in the file's metadata."""
        return {"pre_nms_thresh": self.pre_nms_thresh, "pre_nms_top_n": self.pre_nms_top_n,
                "nms_thresh": self.nms_thresh, "detections_per_img": self.detections_per_img,
                "min_size": float(self.min_size), "mmdet": bool(self.mmdet), "nms_plus_one": self.nms_plus_one,
                "class_agnostic": self.nms_class_agnostic, "num_levels": len(self.strides)}

    def forward(self, images):
        features = self.backbone(images)
        box_cls, box_regression, centerness = self.head(features)
        height, width = images.shape[2], images.shape[3]
        outputs = []
        for cls, reg, ctr, stride, cell in zip(box_cls, box_regression, centerness, self.strides, self.cell_anchors):
            n, _, h, w = cls.shape
            per_location = reg.shape[1] // 4
            classes = cls.shape[1] // per_location
            scores = permute_and_flatten(cls, n, per_location, classes, h, w).sigmoid()
            ctr = permute_and_flatten(ctr, n, per_location, 1, h, w).reshape(n, -1).sigmoid()
            deltas = permute_and_flatten(reg, n, per_location, 4, h, w).reshape(n, -1, 4)
            anchors = anchor_grid(cell, stride, h, w)
            boxes = self.box_coder.decode(deltas.reshape(-1, 4), anchors.repeat(n, 1)).reshape(n, -1, 4)
            outputs += [scores, ctr, clip_boxes_to_image(boxes, width, height, self.plus_one)]
        return tuple(outputs)


def read_settings(session):
    """The post-processing settings an onnxruntime session's --no-nms model records."""
    text = session.get_modelmeta().custom_metadata_map.get(SETTINGS_METADATA)
    if not text:
        raise ValueError("this ONNX file records no post-processing settings: it was not exported with --no-nms")
    return json.loads(text)


def _iou(box, boxes, plus_one):
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1 + plus_one, 0, None) * np.clip(y2 - y1 + plus_one, 0, None)
    area = (boxes[:, 2] - boxes[:, 0] + plus_one) * (boxes[:, 3] - boxes[:, 1] + plus_one)
    box_area = (box[2] - box[0] + plus_one) * (box[3] - box[1] + plus_one)
    return inter / (box_area + area - inter)


def _nms(boxes, scores, labels, threshold, plus_one, class_agnostic):
    """Indices kept by greedy NMS (best score first); a box suppresses later boxes of its own
    label (of any label when ``class_agnostic``) whose IoU exceeds ``threshold``."""
    order = np.argsort(-scores, kind="stable")
    suppressed = np.zeros(len(order), dtype=bool)
    kept = []
    for position, index in enumerate(order):
        if suppressed[position]:
            continue
        kept.append(index)
        rest = order[position + 1:]
        same = np.ones(len(rest), dtype=bool) if class_agnostic else labels[rest] == labels[index]
        overlap = np.zeros(len(rest), dtype=bool)
        if same.any():
            overlap[same] = _iou(boxes[index], boxes[rest[same]], plus_one) > threshold
        suppressed[position + 1:] |= overlap
    return np.array(kept, dtype=np.int64)


def _level_detections(cls, ctr, boxes, settings):
    """One image's candidate detections of one level: (boxes [k, 4], scores [k], labels [k])."""
    classes = cls.shape[1]
    candidates = cls > settings["pre_nms_thresh"]
    ranked = np.where(candidates, cls if settings["mmdet"] else cls * ctr[:, None], -1.0).reshape(-1)
    count = min(int(candidates.sum()), settings["pre_nms_top_n"])
    top = np.argsort(-ranked, kind="stable")[:count]
    rows, labels = top // classes, top % classes + 1
    scores = ranked[top] * ctr[rows] if settings["mmdet"] else np.sqrt(ranked[top])
    selected = boxes[rows]
    widths, heights = selected[:, 2] - selected[:, 0], selected[:, 3] - selected[:, 1]
    min_size = settings["min_size"]
    if settings["mmdet"]:
        large = (widths > min_size) & (heights > min_size)
    else:
        large = (widths + 1 >= min_size) & (heights + 1 >= min_size)
    return selected[large], scores[large].astype(np.float32), labels[large]


def postprocess(outputs, settings):
    """The --no-nms graph's outputs (a list in output order, or {name: array}) -> per image
    (boxes [n, 4], scores [n], labels [n]), best first: the full graph's detections."""
    if isinstance(outputs, dict):
        outputs = [outputs[name] for name in output_names(settings["num_levels"])]
    results = []
    for image in range(outputs[0].shape[0]):
        parts = [_level_detections(outputs[i][image], outputs[i + 1][image], outputs[i + 2][image], settings)
                 for i in range(0, len(outputs), 3)]
        boxes, scores, labels = (np.concatenate(p) for p in zip(*parts))
        kept = _nms(boxes, scores, labels, settings["nms_thresh"], settings["nms_plus_one"],
                    settings["class_agnostic"])
        kept = kept[:settings["detections_per_img"]]
        results.append((boxes[kept], scores[kept], labels[kept]))
    return results


def export_raw(model, cfg, path, height, width, static=False):
    """Writes the --no-nms ONNX file, with its post-processing settings and the model's class
    names in its metadata; dynamic batch and size unless ``static``."""
    from .onnx import export_graph, write_metadata

    exportable = RawATSS(model, cfg).eval()
    names = output_names(len(exportable.strides))
    dynamic = None if static else dict({"images": {0: "batch", 2: "height", 3: "width"}},
                                       **{name: {0: "batch", 1: "rows"} for name in names})
    export_graph(exportable, path, height, width, names, dynamic)
    write_metadata(path, {SETTINGS_METADATA: json.dumps(exportable.settings())}, getattr(model, "class_names", None))
    return exportable


def raw_onnx_detections(session, images):
    """:func:`postprocess` of an onnxruntime session's --no-nms outputs on ``images`` (a tensor)."""
    from .onnx import check_input_shape

    check_input_shape(session, images)
    return postprocess(session.run(None, {"images": images.numpy()}), read_settings(session))

