#!/usr/bin/env python
"""Exports the whole ATSS detector to ONNX and checks the export with onnxruntime.

    python tools/export_onnx.py --config-file configs/atss/atss_R_50_FPN_1x.yaml \\
        --output atss_r50.onnx MODEL.WEIGHT ATSS_R_50_FPN_1x.pth [KEY VALUE ...]

The graph holds the backbone, the head, the anchors of the input's size, box decoding, the
per-level pre-NMS top-n (MODEL.ATSS.PRE_NMS_TOP_N of the logits above INFERENCE_TH, ranked by
cls x centerness), the sqrt(cls x centerness) score, multi-label NMS (ONNX NonMaxSuppression
on boxes grown by one pixel, which reproduces the legacy +1 IoU) and the final cap.

Input ``images``: float32 [N, 3, H, W], normalised as the model's own input tensor (BGR 0..255
minus INPUT.PIXEL_MEAN, divided by PIXEL_STD, for the official configs), H and W dynamic and
multiples of DATALOADER.SIZE_DIVISIBILITY (pad like the model's ImageList does). Outputs:
``boxes`` [N, D, 4] (xyxy in the input's frame, clipped to it), ``scores`` [N, D], ``labels``
int64 [N, D] (1..C), ``num_detections`` int64 [N]; D = TEST.DETECTIONS_PER_IMG, rows past
num_detections are zero. After exporting, onnxruntime and the eager model run on the same
input and their agreement is printed (and at the --check-sizes, comma separated).
"""
import argparse
import os
import sys
import warnings

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from atss_core.config import cfg as default_cfg  # noqa: E402
from atss_core.layers.misc import DFConv2d  # noqa: E402
from atss_core.modeling.detector import build_detection_model  # noqa: E402
from atss_core.modeling.rpn.utils import permute_and_flatten  # noqa: E402
from atss_core.utils.checkpoint import Checkpointer  # noqa: E402
from atss_core.utils.cli import run_cli  # noqa: E402

OPSET = 17
INPUT_NAMES = ["images"]
OUTPUT_NAMES = ["boxes", "scores", "labels", "num_detections"]


class MultiLabelNMS(torch.autograd.Function):
    """Per-class NMS of [N, K, 4] boxes with [N, C, K] scores (a box only scores in its own
    class row, others hold -1) -> [M, 3] (image, class, box) rows, as ONNX's NonMaxSuppression.
    Eagerly it runs atss_core's ml_nms; exported, it is that ONNX operator."""

    @staticmethod
    def forward(ctx, boxes, class_scores, iou_threshold, max_per_class):
        from atss_core.layers import ml_nms

        rows = []
        for image in range(boxes.shape[0]):
            best, classes = class_scores[image].max(dim=0)
            valid = torch.nonzero(best > 0).squeeze(1)
            # the +1 boxes use plain IoU here too: undo the growth for the legacy kernel
            legacy = boxes[image, valid] - torch.tensor([0.0, 0.0, 1.0, 1.0], device=boxes.device)
            kept = valid[ml_nms(legacy, best[valid], classes[valid], float(iou_threshold))]
            rows.append(torch.stack([torch.full_like(kept, image), classes[kept], kept], dim=1))
        return torch.cat(rows).to(torch.int64) if rows else torch.zeros(0, 3, dtype=torch.int64)

    @staticmethod
    def symbolic(g, boxes, class_scores, iou_threshold, max_per_class):
        max_out = g.op("Constant", value_t=torch.tensor([max_per_class], dtype=torch.int64))
        iou = g.op("Constant", value_t=torch.tensor([iou_threshold], dtype=torch.float32))
        score = g.op("Constant", value_t=torch.tensor([0.0], dtype=torch.float32))
        return g.op("NonMaxSuppression", boxes, class_scores, max_out, iou, score)


class ExportableATSS(nn.Module):
    """The detector as one tensor-in, tensors-out graph (see the module docstring). Only the
    post-processing is written anew: the backbone and head are the model's own modules."""

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
        self.num_classes = cfg.MODEL.ATSS.NUM_CLASSES - 1

    def level_anchors(self, feature, stride, cell):
        """[H * W * A, 4] in (y, x, anchor) order, as the model's AnchorGenerator makes them."""
        height, width = feature.shape[-2], feature.shape[-1]
        shifts_x = torch.arange(0, width, dtype=torch.float32) * stride
        shifts_y = torch.arange(0, height, dtype=torch.float32) * stride
        shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
        shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
        shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
        return (shifts.view(-1, 1, 4) + cell.view(1, -1, 4)).reshape(-1, 4)

    def forward(self, images):
        features = self.backbone(images)
        box_cls, box_regression, centerness = self.head(features)
        batch = images.shape[0]
        height, width = images.shape[2], images.shape[3]
        C = self.num_classes
        all_boxes, all_scores, all_labels = [], [], []
        for cls, reg, ctr, feature, stride, cell in zip(box_cls, box_regression, centerness, features, self.strides,
                                                        self.cell_anchors):
            N, _, H, W = cls.shape
            A = cell.shape[0]
            cls = permute_and_flatten(cls, N, A, C, H, W).sigmoid()
            reg = permute_and_flatten(reg, N, A, 4, H, W).reshape(N, -1, 4)
            ctr = permute_and_flatten(ctr, N, A, 1, H, W).reshape(N, -1).sigmoid()
            anchors = self.level_anchors(feature, stride, cell)
            # candidates: logits above the threshold, ranked by cls x centerness; padding keeps
            # the top-n a constant k whatever the level's size
            ranked = torch.where(cls > self.pre_nms_thresh, cls * ctr[:, :, None], torch.full_like(cls, -1.0))
            ranked = torch.cat([ranked.reshape(N, -1), torch.full((N, self.pre_nms_top_n), -1.0)], dim=1)
            top, index = ranked.topk(self.pre_nms_top_n, dim=1)
            valid = top > 0
            index = torch.where(valid, index, torch.zeros_like(index))  # padding rows point at row 0
            anchor_index = torch.div(index, C, rounding_mode="floor")
            labels = index - anchor_index * C + 1
            deltas = torch.gather(reg, 1, anchor_index[:, :, None].expand(N, self.pre_nms_top_n, 4))
            boxes = self.box_coder.decode(deltas.reshape(-1, 4), anchors[anchor_index.reshape(-1)])
            boxes = boxes.reshape(N, self.pre_nms_top_n, 4)
            x = boxes[:, :, 0::2].clamp(min=0).minimum((width - 1) * torch.ones(1))
            y = boxes[:, :, 1::2].clamp(min=0).minimum((height - 1) * torch.ones(1))
            boxes = torch.stack([x[:, :, 0], y[:, :, 0], x[:, :, 1], y[:, :, 1]], dim=2)
            all_boxes.append(boxes)
            all_scores.append(torch.where(valid, top.clamp(min=0).sqrt(), torch.full_like(top, -1.0)))
            all_labels.append(labels)
        boxes, scores, labels = torch.cat(all_boxes, 1), torch.cat(all_scores, 1), torch.cat(all_labels, 1)
        # one score row per class: NMS per label; +1 on the far corners gives the legacy IoU
        classes = torch.arange(1, C + 1).view(1, C, 1)
        class_scores = torch.where(labels[:, None, :] == classes, scores[:, None, :], torch.full_like(
            scores[:, None, :], -1.0))
        grown = boxes + torch.tensor([0.0, 0.0, 1.0, 1.0])
        selected = MultiLabelNMS.apply(grown, class_scores, self.nms_thresh, len(self.strides) * self.pre_nms_top_n)
        kept = torch.full_like(scores, -1.0)
        kept[selected[:, 0], selected[:, 2]] = scores[selected[:, 0], selected[:, 2]]
        final, order = kept.topk(self.detections_per_img, dim=1)
        found = final > 0
        boxes = torch.gather(boxes, 1, order[:, :, None].expand(batch, self.detections_per_img, 4))
        boxes = boxes * found[:, :, None]
        scores = final * found
        labels = torch.gather(labels, 1, order) * found
        return boxes, scores, labels, found.sum(dim=1)


def build_model(cfg):
    model = build_detection_model(cfg).eval()
    if cfg.MODEL.WEIGHT:
        Checkpointer(cfg, model).load(cfg.MODEL.WEIGHT, use_latest=False, strict=True)
    return model


def export(model, cfg, path, height, width):
    """Writes the ONNX file (dynamic batch, height and width)."""
    exportable = ExportableATSS(model, cfg).eval()
    sample = torch.zeros(1, 3, height, width)
    dynamic = {"images": {0: "batch", 2: "height", 3: "width"}, "boxes": {0: "batch"}, "scores": {0: "batch"},
               "labels": {0: "batch"}, "num_detections": {0: "batch"}}
    # the TorchScript-based exporter: the graph's NMS is a custom operator with an ONNX symbolic
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on constants, and the exporter's deprecation notice
        torch.onnx.export(exportable, (sample,), path, input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    return exportable


def eager_detections(model, images):
    """[(boxes [n, 4], scores [n], labels [n])] of the eager model on a normalised batch."""
    from atss_core.structures.image_list import ImageList

    height, width = images.shape[-2:]
    with torch.no_grad():
        outputs = model(ImageList(images, [(height, width)] * images.shape[0]))
    return [(o.bbox.numpy(), o.get_field("scores").numpy(), o.get_field("labels").numpy()) for o in outputs]


def onnx_detections(session, images):
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


def parse_size(text):
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError("sizes are written HxW, such as 800x1216; got {!r}".format(text)) from None
    return height, width


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--output", required=True, help="the .onnx file to write")
    parser.add_argument("--size", default="800x1216", help="HxW of the sample used to trace and check")
    parser.add_argument("--check-sizes", default="608x800", help="more HxW sizes to check, comma separated")
    parser.add_argument("--debug", action="store_true", help="full traceback on errors")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")
    return parser.parse_args(argv)


def main(argv=None):
    import onnxruntime

    args = parse_args(argv)
    cfg = default_cfg.clone()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(["MODEL.DEVICE", "cpu"] + (args.opts or []))
    cfg.freeze()
    if not cfg.MODEL.WEIGHT:
        print("warning: MODEL.WEIGHT is empty: exporting randomly initialised weights")
    model = build_model(cfg)
    height, width = parse_size(args.size)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    export(model, cfg, args.output, height, width)
    print("wrote", args.output)
    session = onnxruntime.InferenceSession(args.output, providers=["CPUExecutionProvider"])
    generator = torch.Generator().manual_seed(0)
    for size in [args.size] + [s for s in args.check_sizes.split(",") if s]:
        h, w = parse_size(size)
        images = torch.randn(1, 3, h, w, generator=generator) * 50
        fraction, eager_count, onnx_count = agreement(eager_detections(model, images)[0],
                                                      onnx_detections(session, images)[0])
        print("{}: {:.1%} of the {} eager detections matched by onnxruntime ({} detections)".format(
            size, fraction, eager_count, onnx_count))


if __name__ == "__main__":
    run_cli(main)
