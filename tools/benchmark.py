#!/usr/bin/env python
"""Times atss_core against torchvision in the same run.

    python tools/benchmark.py --ops [--device cpu|cuda] [--repeats N] [--json FILE]
    python tools/benchmark.py --model [--sizes 800x1216 800x1333] [--json FILE] [--readme]
    python tools/benchmark.py --coco-eval [--coco-eval-images N] [--json FILE]
    python tools/benchmark.py --dense [--dense-types ATSS SSC IoU TOPK] [--json FILE] [--readme]

--ops: every compiled op against its torchvision counterpart (atss_core/benchmark/ops.py).
--model: the ATSS R-50-FPN against torchvision's FCOS and RetinaNet (inference per image, a
training step), the machine's fp32/bf16 limits with our forward's achieved GFLOP/s, the ATSS
assignment against a per-gt loop, post-processing, onnxruntime (atss_core/benchmark/model.py).
--coco-eval: pycocotools against faster-coco-eval (atss_core/benchmark/coco_eval.py).
--dense: assignment time and peak memory for G = 10 .. 3000 objects at 800x1333, 1 and 9 anchors
per location, ours against the official computation with its whole [anchors, gts] matrices,
each case in a fresh process, then our whole loss at G = 3000 (atss_core/benchmark/dense_assignment.py). Each case
is run a few times to warm up (excluded), then timed `--repeats` times; the tables show
medians and ratios ours / theirs (< 1 means we are faster).
"""
import argparse
import json
import math
import os
import platform

import torch
import torchvision

from atss_core.benchmark import coco_eval, dense_assignment, model, ops
from atss_core.layers import nms
from atss_core.structures import BoxList
from atss_core.structures.boxlist_ops import box_iou_legacy, cat_boxlist, keep_top_detections
from atss_core.utils.cli import add_debug_flag, parse_size, run_cli


# The plain references the vectorised code is checked and timed against (--model); they live
# here, not in the package, since nothing but the benchmark (and its test) runs them.
def plain_assign_atss(anchors, counts, gt_boxes, topk):
    """ATSS assignment one gt at a time, as plainly as possible (the reference for speed and output)."""
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    result = torch.full((anchors.shape[0],), -1, dtype=torch.int64)
    best_iou = torch.full((anchors.shape[0],), -math.inf)
    for g in range(gt_boxes.shape[0]):
        gt = gt_boxes[g:g + 1]
        ious = box_iou_legacy(anchors, gt)[:, 0]
        gt_centre = (gt[0, :2] + gt[0, 2:]) / 2
        distances = (centres - gt_centre).pow(2).sum(1).sqrt()
        candidates, start = [], 0
        for count in counts:
            k = min(topk, count)
            candidates.append(distances[start:start + count].topk(k, largest=False).indices + start)
            start += count
        candidates = torch.cat(candidates)
        threshold = ious[candidates].mean() + ious[candidates].std()
        ltrb = torch.cat([centres[candidates] - gt[0, :2], gt[0, 2:] - centres[candidates]], dim=1)
        positive = candidates[(ious[candidates] >= threshold) & (ltrb.min(dim=1).values > 0.01)]
        better = ious[positive] > best_iou[positive]
        result[positive[better]] = g
        best_iou[positive[better]] = ious[positive[better]]
    return result



def plain_postprocess(post, box_cls, box_regression, centerness, anchors):
    """The post-processing of one image written plainly: per level, per class thresholds and
    top-n, then NMS class by class and the k-th-value cap (the reference for speed and output)."""
    boxes, scores, labels = [], [], []
    for cls, reg, ctr, level in zip(box_cls, box_regression, centerness, anchors[0]):
        _, channels, height, width = cls.shape
        per_anchor = reg.shape[1] // 4
        classes = channels // per_anchor
        cls = cls[0].reshape(per_anchor, classes, height, width).permute(2, 3, 0, 1).reshape(-1, classes).sigmoid()
        reg = reg[0].reshape(per_anchor, 4, height, width).permute(2, 3, 0, 1).reshape(-1, 4)
        ctr = ctr[0].reshape(per_anchor, 1, height, width).permute(2, 3, 0, 1).reshape(-1).sigmoid()
        candidates = cls > post.pre_nms_thresh
        combined = (cls * ctr[:, None])[candidates]
        top = combined.topk(min(int(candidates.sum()), post.pre_nms_top_n), sorted=False)
        where = candidates.nonzero()[top.indices]
        boxes.append(post.box_coder.decode(reg[where[:, 0]], level.bbox[where[:, 0]]))
        scores.append(top.values.sqrt())
        labels.append(where[:, 1] + 1)
    image_size = anchors[0][0].size
    merged = BoxList(torch.cat(boxes), image_size).clip_to_image(remove_empty=False)
    merged.add_field("scores", torch.cat(scores))
    merged.add_field("labels", torch.cat(labels))
    kept = []
    for label in merged.get_field("labels").unique().tolist():
        of_class = merged[(merged.get_field("labels") == label).nonzero().squeeze(1)]
        kept.append(of_class[nms(of_class.bbox, of_class.get_field("scores"), post.nms_thresh)])
    return keep_top_detections(cat_boxlist(kept), post.fpn_post_nms_top_n)


PLAIN_REFERENCES = {"assignment": plain_assign_atss, "postprocessing": plain_postprocess}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", action="store_true", help="benchmark the compiled ops")
    parser.add_argument("--model", action="store_true", help="benchmark the detector against torchvision's")
    parser.add_argument("--coco-eval", action="store_true",
                        help="pycocotools against faster-coco-eval on a generated detection set")
    parser.add_argument("--coco-eval-images", type=int, default=5000, help="--coco-eval: images (100 detections each)")
    parser.add_argument("--dense", action="store_true",
                        help="assignment memory and time in dense scenes, ours against the whole-matrix official way")
    parser.add_argument("--dense-types", nargs="+", default=["ATSS"], choices=sorted(dense_assignment.FULL_MATRIX),
                        help="--dense: the POSITIVE_TYPEs measured (default ATSS)")
    parser.add_argument("--sizes", nargs="*", default=["800x1216"], help="--model: inference sizes HxW")
    parser.add_argument("--train-size", default="800x1216", help="--model: training step size HxW")
    parser.add_argument("--skip-training", action="store_true", help="--model: leave out the training step")
    parser.add_argument("--readme", action="store_true",
                        help="--model / --dense: rewrite that table in the README")
    parser.add_argument("--evaluation", action="store_true",
                        help="--model: also time test_net.py's evaluation of the shipped raccoon photographs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, help="timed runs per case (default: 7 for --ops, 3 for --model)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--filter", default="", help="--ops: only run cases whose name contains this text")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if not (args.ops or args.model or args.coco_eval or args.dense):
        parser.error("choose a suite: --ops, --model, --coco-eval or --dense")
    if args.ops and args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda requested but no CUDA device is available")
    return args


def write_json(path, data):
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(data, f, indent=2)
        print("wrote", path)


def coco_eval_main(args):
    result = coco_eval.coco_eval_case(args.coco_eval_images)
    print("{}: pycocotools {:.1f} s, faster-coco-eval {:.1f} s ({:.1f}x faster), the same 12 numbers".format(
        result["case"], result["seconds"]["pycocotools"], result["seconds"]["faster-coco-eval"], result["speedup"]))
    return result


def model_main(args):
    repeats = args.repeats or 3  # the model cases take seconds each
    results = model.run_model_suite([parse_size(s) for s in args.sizes], args.warmup, repeats,
                                    parse_size(args.train_size), PLAIN_REFERENCES, skip_training=args.skip_training,
                                    evaluation=args.evaluation)
    print(model.format_table(results))
    report = dict(suite="model", device="cpu", device_name=platform.processor() or "cpu",
                  threads=torch.get_num_threads(), torch=torch.__version__, torchvision=torchvision.__version__,
                  repeats=repeats, warmup=args.warmup, results=results)
    if args.readme:
        model.update_readme(os.path.join(model.ROOT, "README.md"), report)
        print("updated the README's model-benchmark table")
    return report


def dense_main(args):
    rows = dense_assignment.dense_assignment_rows(tuple(args.dense_types), repeats=args.repeats or 3)
    table = dense_assignment.render_markdown(rows)
    print(table)
    if args.readme:
        dense_assignment.update_readme(os.path.join(model.ROOT, "README.md"), table)
        print("updated the README's dense-assignment table")
    return dict(suite="dense", threads=torch.get_num_threads(), torch=torch.__version__, rows=rows)


def main(argv=None):
    args = parse_args(argv)
    if args.dense:
        report = dense_main(args)
    elif args.coco_eval:
        report = coco_eval_main(args)
    elif args.model:
        report = model_main(args)
    else:
        report = ops.run_ops_suite(torch.device(args.device), args.warmup, args.repeats or 7, args.filter)
    write_json(args.json, report)
    return report


if __name__ == "__main__":
    run_cli(main)
