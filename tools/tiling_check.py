#!/usr/bin/env python
"""Tiled inference (TEST.TILE) on a large image made of copies of a small scene: objects found
with and without tiles, against the ground truth, and a picture.

    python tools/tiling_check.py --config-file configs/quickstart/atss_R_18_synthetic.yaml \\
        --weights output/quickstart/model_final.pth [--output output/tiling_check] [--copies 3]

The scene is a ROWS x COLS grid of the synthetic validation images (datasets/synthetic/val,
generated when missing), about 800 x 1000 pixels; the large image is --copies x --copies of it
(2304 x 3072 by default). The scene alone and the large image are run at INPUT.MIN_SIZE_TEST /
MAX_SIZE_TEST = 800 / 1333 (the large one shrinks three times), then the large image with
TEST.TILE (tiles of --tile-size pixels). A ground-truth box is found when a detection of its
class above --score overlaps it with IoU >= 0.5. Writes summary.json and tiling.jpg (the
large image's top-left scene, untiled and tiled, side by side).
"""
import argparse
import json
import os

import cv2
import numpy as np
import torch

from atss_core.config import load_config
from atss_core.data.synthetic import make_synthetic_dataset
from atss_core.engine.predictor import ATSSDemo
from atss_core.structures.boxlist_ops import box_iou_legacy
from atss_core.utils.cli import add_debug_flag, run_cli
from atss_core.utils.drawing import draw_box, palette, titled

ROWS, COLS = 6, 8


def build_scene(data_folder, rows=ROWS, cols=COLS):
    """(BGR image, gt boxes [n, 4] xyxy inclusive, gt labels [n]) of a rows x cols grid of the
    synthetic validation images, in file order."""
    annotations_path = os.path.join(data_folder, "annotations", "instances_val.json")
    if not os.path.isfile(annotations_path):
        make_synthetic_dataset(data_folder)
    with open(annotations_path) as f:
        data = json.load(f)
    images = sorted(data["images"], key=lambda record: record["id"])[:rows * cols]
    if len(images) < rows * cols:
        raise ValueError("{} holds {} validation images; the scene needs {}".format(data_folder, len(images),
                                                                                    rows * cols))
    side = images[0]["width"]
    scene = np.zeros((rows * side, cols * side, 3), dtype=np.uint8)
    boxes, labels = [], []
    for k, record in enumerate(images):
        y0, x0 = (k // cols) * side, (k % cols) * side
        scene[y0:y0 + side, x0:x0 + side] = cv2.imread(os.path.join(data_folder, "val", record["file_name"]))
        for ann in data["annotations"]:
            if ann["image_id"] == record["id"]:
                x, y, w, h = ann["bbox"]
                boxes.append([x0 + x, y0 + y, x0 + x + w - 1, y0 + y + h - 1])
                labels.append(ann["category_id"])
    return scene, torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(labels, dtype=torch.int64)


def tiled_copies(scene, boxes, labels, copies):
    """The scene repeated copies x copies times, with its boxes and labels."""
    height, width = scene.shape[:2]
    image = np.tile(scene, (copies, copies, 1))
    shifts = torch.tensor([[c * width, r * height, c * width, r * height]
                           for r in range(copies) for c in range(copies)], dtype=torch.float32)
    all_boxes = (boxes[None] + shifts[:, None]).reshape(-1, 4)
    return image, all_boxes, labels.repeat(copies * copies)


def found(predictions, boxes, labels, score):
    """How many gt boxes a detection of their class above ``score`` matches at IoU >= 0.5 (each
    detection used once, best first)."""
    keep = predictions.get_field("scores") >= score
    detections = predictions[keep.nonzero().squeeze(1)]
    if len(detections) == 0 or len(boxes) == 0:
        return 0, len(detections)
    ious = box_iou_legacy(detections.bbox, boxes)
    ious[detections.get_field("labels")[:, None] != labels[None, :]] = 0
    order = detections.get_field("scores").argsort(descending=True)
    taken = torch.zeros(len(boxes), dtype=torch.bool)
    for d in order.tolist():
        candidates = ious[d].clone()
        candidates[taken] = 0
        best = int(candidates.argmax())
        if candidates[best] >= 0.5:
            taken[best] = True
    return int(taken.sum()), len(detections)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default="configs/quickstart/atss_R_18_synthetic.yaml")
    parser.add_argument("--weights", required=True)
    parser.add_argument("--data", default="datasets/synthetic", help="synthetic data folder (generated when missing)")
    parser.add_argument("--output", default="output/tiling_check")
    parser.add_argument("--copies", type=int, default=3, help="the large image is copies x copies scenes")
    parser.add_argument("--tile-size", type=int, default=800)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--score", type=float, default=0.3, help="detections counted above this score")
    parser.add_argument("--test-size", type=int, nargs=2, default=(800, 1333), metavar=("MIN", "MAX"))
    add_debug_flag(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    scene, boxes, labels = build_scene(args.data)
    large, large_boxes, large_labels = tiled_copies(scene, boxes, labels, args.copies)
    base = ["MODEL.DEVICE", "cpu", "INPUT.MIN_SIZE_TEST", args.test_size[0], "INPUT.MAX_SIZE_TEST", args.test_size[1],
            "TEST.DETECTIONS_PER_IMG", 5000, "MODEL.ATSS.PRE_NMS_TOP_N", 3000]
    untiled = ATSSDemo(load_config(args.config_file, base + list(args.opts)), weights=args.weights,
                       confidence_threshold=args.score)
    tiled = ATSSDemo(load_config(args.config_file, base + ["TEST.TILE.ENABLED", True, "TEST.TILE.SIZE", args.tile_size,
                                                           "TEST.TILE.OVERLAP", args.overlap] + list(args.opts)),
                     weights=args.weights, confidence_threshold=args.score)
    runs = {}
    with torch.no_grad():
        predictions = {"scene": untiled.compute_prediction(scene), "large": untiled.compute_prediction(large),
                       "large_tiled": tiled.compute_prediction(large)}
    for name, gt in (("scene", (boxes, labels)), ("large", (large_boxes, large_labels)),
                     ("large_tiled", (large_boxes, large_labels))):
        matched, detections = found(predictions[name], gt[0], gt[1], args.score)
        runs[name] = {"objects": len(gt[0]), "found": matched, "detections": detections}
        print("{:<12} {:>5} objects, {:>5} found ({:.0%}), {:>5} detections above {}".format(
            name, len(gt[0]), matched, matched / max(len(gt[0]), 1), detections, args.score))
    summary = {"scene_size": list(scene.shape[:2]), "large_size": list(large.shape[:2]), "tile_size": args.tile_size,
               "overlap": args.overlap, "score": args.score, "runs": runs,
               "found_ratio_large_tiled_to_scene": runs["large_tiled"]["found"] / max(runs["scene"]["found"], 1)}
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    # the picture: the top-left copy of the scene inside the large image, untiled and tiled
    scene_height, scene_width = scene.shape[:2]
    panels = []
    for name, title in (("large", "untiled"), ("large_tiled", "tiled")):
        canvas = large[:scene_height, :scene_width].copy()
        chosen = untiled.select_top_predictions(predictions[name])
        for box, label in zip(chosen.bbox.tolist(), chosen.get_field("labels").tolist()):
            if box[0] < scene_width and box[1] < scene_height:
                draw_box(canvas, box, palette(label), thickness=2)
        canvas = cv2.resize(canvas, (scene_width * 2 // 3, scene_height * 2 // 3), interpolation=cv2.INTER_AREA)
        panels.append(titled(canvas, "{} (top-left scene of {}x{}): {} of {} objects found in the whole image".format(
            title, large.shape[1], large.shape[0], runs[name]["found"], runs[name]["objects"])))
    picture = os.path.join(args.output, "tiling.jpg")
    cv2.imwrite(picture, np.concatenate(panels, axis=1), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print("wrote", os.path.join(args.output, "summary.json"), "and", picture)
    return summary


if __name__ == "__main__":
    run_cli(main)
