"""The exportable ATSS detector (tools/export_onnx.py is its command line).

The graph holds the backbone, the head, the anchors of the input's size, box decoding, the
per-level pre-NMS top-n (MODEL.ATSS.PRE_NMS_TOP_N of the logits above INFERENCE_TH, ranked by
cls x centerness), the sqrt(cls x centerness) score, multi-label NMS (ONNX NonMaxSuppression
on boxes grown by one pixel, which reproduces the legacy +1 IoU) and the final cap. The anchors
and the per-level scoring, decoding and clipping are the eager model's own functions
(anchor_generator.anchor_grid, inference.level_candidates / decode_candidates); only the
candidate selection, the NMS and the cap have padded fixed-size counterparts here. With
MODEL.ATSS.POSTPROCESS "mmdet" the graph ranks by cls, scores cls x centerness and runs
class-wise NMS without the +1, as the eager MMDetPostProcessor (the NMS's IoU follows the
post-processing, the boxes' decoding and clipping follow MODEL.LEGACY_PLUS_ONE, as eagerly).

Input ``images``: float32 [N, 3, H, W], normalised as the model's own input tensor (BGR 0..255
minus INPUT.PIXEL_MEAN, divided by PIXEL_STD, for the official configs), H and W dynamic and
multiples of DATALOADER.SIZE_DIVISIBILITY (pad like the model's ImageList does). Outputs:
``boxes`` [N, D, 4] (xyxy in the input's frame, clipped to it), ``scores`` [N, D], ``labels``
int64 [N, D] (1..C), ``num_detections`` int64 [N]; D = TEST.DETECTIONS_PER_IMG, rows past
num_detections are zero.
"""
import json
import warnings

import numpy as np
import torch
from torch import nn

from atss_core.layers.misc import DFConv2d
from atss_core.modeling.detector import build_detection_model
from atss_core.modeling.rpn.anchor_generator import anchor_grid
from atss_core.modeling.rpn.atss.inference import SENTINEL, class_wise_nms, decode_candidates, level_candidates
from atss_core.utils.checkpoint import DetectronCheckpointer

OPSET = 17
INPUT_NAMES = ["images"]
OUTPUT_NAMES = ["boxes", "scores", "labels", "num_detections"]


# NonMaxSuppression drops scores not above this: the SENTINEL padding, never a real score
# (>= 0; 0 when cls x centerness underflows, which the eager model keeps too)
SCORE_THRESHOLD = SENTINEL / 2


class MultiLabelNMS(torch.autograd.Function):
    """Per-class NMS of [N, K, 4] boxes with [N, C, K] scores (a box only scores in its own
    class row, others hold SENTINEL) -> [M, 3] (image, class, box) rows, as ONNX's
    NonMaxSuppression. Eagerly it runs atss_core's ml_nms; exported, it is that ONNX operator."""

    @staticmethod
    def forward(ctx, boxes, class_scores, iou_threshold, max_per_class, plus_one=1):
        from atss_core.layers import ml_nms

        rows = []
        for image in range(boxes.shape[0]):
            best, classes = class_scores[image].max(dim=0)
            valid = torch.nonzero(best > SCORE_THRESHOLD).squeeze(1)
            if plus_one:
                # the +1 boxes use plain IoU here too: undo the growth for the legacy kernel
                legacy = boxes[image, valid] - torch.tensor([0.0, 0.0, 1.0, 1.0], device=boxes.device)
                kept = valid[ml_nms(legacy, best[valid], classes[valid], float(iou_threshold))]
            else:
                kept = valid[class_wise_nms(boxes[image, valid], best[valid], classes[valid], float(iou_threshold))]
            rows.append(torch.stack([torch.full_like(kept, image), classes[kept], kept], dim=1))
        return torch.cat(rows).to(torch.int64) if rows else torch.zeros(0, 3, dtype=torch.int64)

    @staticmethod
    def symbolic(g, boxes, class_scores, iou_threshold, max_per_class, plus_one=1):
        max_out = g.op("Constant", value_t=torch.tensor([max_per_class], dtype=torch.int64))
        iou = g.op("Constant", value_t=torch.tensor([iou_threshold], dtype=torch.float32))
        score = g.op("Constant", value_t=torch.tensor([SCORE_THRESHOLD], dtype=torch.float32))
        return g.op("NonMaxSuppression", boxes, class_scores, max_out, iou, score)


def select_candidates_padded(ranked, pre_nms_top_n):
    """The graph's counterpart of inference.select_candidates: per image exactly
    k = ``pre_nms_top_n`` of the level's ranked [N, R, C] (SENTINEL-padded, so k is a constant
    whatever the level's size) -> (ranked [N, k], flat index r * C + c [N, k], valid [N, k]).
    Padding rows point at index 0 and are not valid."""
    N = ranked.shape[0]
    ranked = torch.cat([ranked.reshape(N, -1), torch.full((N, pre_nms_top_n), SENTINEL)], dim=1)
    top, index = ranked.topk(pre_nms_top_n, dim=1)
    valid = top >= 0
    return top, torch.where(valid, index, torch.zeros_like(index)), valid


def multi_label_nms_padded(boxes, scores, labels, num_classes, iou_threshold, max_per_class, plus_one=1,
                           class_agnostic=False):
    """The graph's counterpart of ATSSPostProcessor.select_over_all_levels' ml_nms: boxes
    [N, K, 4], scores [N, K] (SENTINEL where not valid), labels [N, K] -> scores [N, K] of the
    boxes NMS keeps, SENTINEL elsewhere. One score row per class makes ONNX's
    NonMaxSuppression multi-label (one row for all, ``class_agnostic``); +1 on the far corners
    gives the legacy IoU (``plus_one``)."""
    if class_agnostic:
        class_scores = scores[:, None, :]
    else:
        classes = torch.arange(1, num_classes + 1).view(1, num_classes, 1)
        class_scores = torch.where(labels[:, None, :] == classes, scores[:, None, :], SENTINEL)
    grown = boxes + torch.tensor([0.0, 0.0, 1.0, 1.0]) * plus_one
    selected = MultiLabelNMS.apply(grown, class_scores, iou_threshold, max_per_class, plus_one)
    kept = torch.full_like(scores, SENTINEL)
    kept[selected[:, 0], selected[:, 2]] = scores[selected[:, 0], selected[:, 2]]
    return kept


def keep_top_padded(boxes, scores, labels, detections_per_img):
    """The graph's counterpart of keep_top_detections: the ``detections_per_img`` best of the
    kept scores [N, K] (SENTINEL where not kept), best first -> boxes [N, D, 4], scores [N, D],
    labels [N, D], counts [N]; rows past the count are zero. Ties at the boundary are cut,
    where the eager cap keeps them all."""
    final, order = scores.topk(detections_per_img, dim=1)
    found = final >= 0
    boxes = torch.gather(boxes, 1, order[:, :, None].expand(-1, -1, 4)) * found[:, :, None]
    labels = torch.gather(labels, 1, order) * found
    return boxes, final * found, labels, found.sum(dim=1)


class ExportableATSS(nn.Module):
    """The detector as one tensor-in, tensors-out graph (see the module docstring). The
    backbone and head are the model's own modules; the anchors and the per-level scoring,
    decoding and clipping are the eager model's functions (anchor_grid, level_candidates,
    decode_candidates); only the candidate selection, the NMS and the cap have padded
    counterparts here."""

    def __init__(self, model, cfg):
        super().__init__()
        unsupported = [name for name, module in model.named_modules() if isinstance(module, DFConv2d)]
        if unsupported:
            raise ValueError("cannot export {} to ONNX: deformable convolution ({}{}) has no onnxruntime kernel; "
                             "export a config without DCN (MODEL.RESNETS.STAGE_WITH_DCN all False, "
                             "MODEL.ATSS.USE_DCN_IN_TOWER False)".format(
                                 cfg.MODEL.BACKBONE.CONV_BODY, ", ".join(unsupported[:3]),
                                 ", ..." if len(unsupported) > 3 else ""))
        self.backbone = model.backbone
        atss = model.rpn
        self.head = atss.head
        self.box_coder = atss.box_coder
        self.strides = list(atss.anchor_generator.strides)
        self.cell_anchors = [anchors.clone() for anchors in atss.anchor_generator.cell_anchors]
        post = atss.box_selector_test
        self.pre_nms_thresh = float(post.pre_nms_thresh)
        self.pre_nms_top_n = int(post.pre_nms_top_n)
        self.nms_thresh = float(post.nms_thresh)
        self.detections_per_img = int(post.fpn_post_nms_top_n)
        self.min_size = post.min_size
        self.mmdet = post.mmdet  # mmdetection's post-processing (MODEL.ATSS.POSTPROCESS)
        self.plus_one = atss.anchor_generator.plus_one  # boxes: decoding and clipping (MODEL.LEGACY_PLUS_ONE)
        self.nms_plus_one = 0 if self.mmdet else 1  # NMS: as the eager post-processor (ml_nms, class_wise_nms)
        self.nms_class_agnostic = bool(post.nms_class_agnostic)  # MODEL.ATSS.NMS_CLASS_AGNOSTIC
        self.num_classes = cfg.MODEL.ATSS.NUM_CLASSES - 1

    def level_detections(self, box_cls, box_regression, centerness, stride, cell_anchors, width, height):
        """One level's candidate detections, pre-NMS: head outputs [N, A * C, H, W],
        [N, A * 4, H, W], [N, A, H, W] -> boxes [N, k, 4], scores [N, k] (SENTINEL on padding),
        labels [N, k]; k = PRE_NMS_TOP_N. The valid rows are the eager model's
        (ATSSPostProcessor.forward_for_single_feature_map), up to ties at the top-n."""
        regression, _, ranked, centerness = level_candidates(box_cls, box_regression, centerness,
                                                             self.pre_nms_thresh, rank_by_cls=self.mmdet)
        anchors = anchor_grid(cell_anchors, stride, box_cls.shape[2], box_cls.shape[3])
        top, index, valid = select_candidates_padded(ranked, self.pre_nms_top_n)
        boxes, scores, labels, large = decode_candidates(
            self.box_coder, regression, anchors, index, top, self.num_classes, width, height, self.min_size,
            centerness=centerness if self.mmdet else None, plus_one=self.plus_one)
        return boxes, torch.where(valid & large, scores, SENTINEL), labels

    def forward(self, images):
        """images [N, 3, H, W] -> boxes [N, D, 4], scores [N, D], labels [N, D], counts [N]."""
        features = self.backbone(images)
        box_cls, box_regression, centerness = self.head(features)
        height, width = images.shape[2], images.shape[3]
        levels = [self.level_detections(cls, reg, ctr, stride, cell, width, height) for cls, reg, ctr, stride, cell
                  in zip(box_cls, box_regression, centerness, self.strides, self.cell_anchors)]
        boxes, scores, labels = (torch.cat(parts, 1) for parts in zip(*levels))
        kept = multi_label_nms_padded(boxes, scores, labels, self.num_classes, self.nms_thresh,
                                      len(self.strides) * self.pre_nms_top_n, self.nms_plus_one,
                                      self.nms_class_agnostic)
        return keep_top_padded(boxes, kept, labels, self.detections_per_img)


CLASS_NAMES_METADATA = "class_names"  # the model's metadata entry: a JSON list, label order, background first


def build_model(cfg):
    """The eager detector with MODEL.WEIGHT; ``model.class_names``: the names its file records
    (None when it records none)."""
    model = build_detection_model(cfg).eval()
    model.class_names = None
    if cfg.MODEL.WEIGHT:
        checkpointer = DetectronCheckpointer(cfg, model)
        checkpointer.load(cfg.MODEL.WEIGHT, use_latest=False, strict=True)
        model.class_names = checkpointer.class_names
    return model


def write_class_names(path, class_names):
    """Records ``class_names`` in the ONNX file's metadata (ONNXDemo reads them)."""
    write_metadata(path, {}, class_names)


def write_metadata(path, entries, class_names=None):
    """Adds the {key: text} ``entries`` (and ``class_names``, when given) to the ONNX file's metadata."""
    import onnx

    entries = dict(entries)
    if class_names:
        entries[CLASS_NAMES_METADATA] = json.dumps(list(class_names))
    if not entries:
        return
    graph = onnx.load(path)
    for key, value in entries.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, path)


def read_class_names(session):
    """The class names an onnxruntime session's model records, else None."""
    text = session.get_modelmeta().custom_metadata_map.get(CLASS_NAMES_METADATA)
    return json.loads(text) if text else None


def export(model, cfg, path, height, width, static=False):
    """Writes the ONNX file (dynamic batch, height and width; a fixed 1 x 3 x ``height`` x
    ``width`` input with ``static``), with the model's class names (``model.class_names``, from
    build_model) in its metadata."""
    exportable = ExportableATSS(model, cfg).eval()
    dynamic = None if static else {"images": {0: "batch", 2: "height", 3: "width"}, "boxes": {0: "batch"},
                                   "scores": {0: "batch"}, "labels": {0: "batch"}, "num_detections": {0: "batch"}}
    export_graph(exportable, path, height, width, OUTPUT_NAMES, dynamic)
    write_class_names(path, getattr(model, "class_names", None))
    return exportable


def export_graph(exportable, path, height, width, output_names, dynamic_axes):
    """torch.onnx.export of ``exportable`` traced on a 1 x 3 x ``height`` x ``width`` input."""
    sample = torch.zeros(1, 3, height, width)
    # the TorchScript-based exporter: the graph's NMS is a custom operator with an ONNX symbolic
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on constants, and the exporter's deprecation notice
        torch.onnx.export(exportable, (sample,), path, input_names=INPUT_NAMES, output_names=output_names,
                          dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False)


def check_input_shape(session, images):
    """Raises a ValueError naming both shapes when ``images`` (an array or tensor) does not fit a
    graph exported with a fixed input shape (--static)."""
    expected = session.get_inputs()[0].shape
    actual = tuple(images.shape)
    fixed = [(i, d) for i, d in enumerate(expected) if isinstance(d, int)]
    if len(actual) != len(expected) or any(actual[i] != d for i, d in fixed):
        raise ValueError("this ONNX graph takes a fixed input of shape {} (exported with --static); got {}: "
                         "export again with --static {}x{} or without --static".format(
                             "x".join(str(d) for d in expected), "x".join(str(d) for d in actual),
                             actual[-2] if len(actual) == 4 else "H", actual[-1] if len(actual) == 4 else "W"))


def eager_detections(model, images):
    """[(boxes [n, 4], scores [n], labels [n])] of the eager model on a normalised batch."""
    from atss_core.structures.image_list import ImageList

    height, width = images.shape[-2:]
    with torch.no_grad():
        outputs = model(ImageList(images, [(height, width)] * images.shape[0]))
    return [(o.bbox.numpy(), o.get_field("scores").numpy(), o.get_field("labels").numpy()) for o in outputs]


def onnx_detections(session, images):
    check_input_shape(session, images)
    boxes, scores, labels, counts = session.run(None, {"images": images.numpy()})
    return [(boxes[i, :n], scores[i, :n], labels[i, :n]) for i, n in enumerate(counts)]


def _iou(box, boxes):
    """Legacy +1 IoU of one box against many."""
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1 + 1, 0, None) * np.clip(y2 - y1 + 1, 0, None)
    area = lambda b: (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)  # noqa: E731
    return inter / (area(box) + area(boxes) - inter)


def agreement(eager, exported, score_tol=1e-3, iou_min=0.99):
    """Fraction of the eager detections with an exported partner (same label, score within
    ``score_tol``, IoU >= ``iou_min``), and the two counts."""
    boxes, scores, labels = eager
    other_boxes, other_scores, other_labels = exported
    matched = 0
    for box, score, label in zip(boxes, scores, labels):
        same = (other_labels == label) & (np.abs(other_scores - score) <= score_tol)
        if same.any() and _iou(box, other_boxes[same]).max() >= iou_min:
            matched += 1
    return (matched / len(boxes) if len(boxes) else 1.0), len(boxes), len(other_boxes)


def check_export(model, path, sizes, seed=0, raw=False, score_tol=1e-3, iou_min=0.99):
    """Runs the eager model and onnxruntime on random inputs of each (height, width) in
    ``sizes``; returns [(size, fraction matched, eager count, onnx count)] (see agreement, with
    ``score_tol`` and ``iou_min``). ``raw``: a --no-nms file, whose outputs go through
    export/raw.py's postprocess."""
    import onnxruntime

    from .raw import raw_onnx_detections

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(seed)
    results = []
    for height, width in sizes:
        images = torch.randn(1, 3, height, width, generator=generator) * 50
        exported = raw_onnx_detections(session, images) if raw else onnx_detections(session, images)
        results.append(((height, width),) + agreement(eager_detections(model, images)[0], exported[0], score_tol,
                                                      iou_min))
    return results
