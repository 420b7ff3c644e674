#!/usr/bin/env python
"""Shows which anchors ATSS picks as positives for one image, and why, next to what the other
POSITIVE_TYPEs (SSC: FCOS's constraints, IoU: RetinaNet's, TOPK) pick for the same image.

    python tools/visualize_assignment.py --config-file CONFIG --output DIR [--dataset NAME] [--index I]
        [--types ATSS SSC IoU TOPK] [KEY VALUE ...]

The image is item I of the dataset (default: the first of DATASETS.TRAIN, whose items are
numbered as browse_dataset.py names its pictures), resized as at test time; its training
target (with ignore regions under MODEL.ATSS.IGNORE_CROWD) is assigned by the loss's own code.
Writes to DIR:
  assignment_ATSS.jpg     the gts, each gt's candidates (rings, per level the TOPK anchors nearest
                          its centre), the positives (dot + anchor box, in the gt's colour), the
                          candidates that passed the threshold but went to another gt (red rings)
                          and the ignored anchors (grey crosses)
  assignment_compare.jpg  one panel per POSITIVE_TYPE
  assignment.md / .json   per gt: candidates per level, their IoU mean and std, the threshold
                          (mean + std), how many passed and how many positives it got (per level)
"""
import argparse
import json
import os

import cv2

from atss_core.config import load_config
from atss_core.data.build import build_dataset
from atss_core.data.transforms import build_transforms
from atss_core.engine import assignment_view as view
from atss_core.modeling.detector import build_detection_model
from atss_core.structures.boxlist_ops import cat_boxlist
from atss_core.utils.cli import add_debug_flag, parse_with_overrides, run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--output", required=True, help="folder for the pictures and the table")
    parser.add_argument("--dataset", default=None, help="a dataset name (default: the first of DATASETS.TRAIN)")
    parser.add_argument("--index", type=int, default=0, help="the item of that dataset (default 0)")
    parser.add_argument("--types", nargs="+", default=list(view.POSITIVE_TYPES), choices=view.POSITIVE_TYPES,
                        help="the POSITIVE_TYPEs to compare (default: all)")
    add_debug_flag(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")
    return parse_with_overrides(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config_file, ["MODEL.DEVICE", "cpu", "MODEL.WEIGHT", ""] + (args.opts or []), freeze=True)
    name = args.dataset or cfg.DATASETS.TRAIN[0]
    # the training dataset's items (indices as browse_dataset.py names them, ignore regions as
    # training gets them) through the deterministic test-time resize
    dataset = build_dataset([name], build_transforms(cfg, is_train=False), is_train=True,
                            exif_orientation=cfg.INPUT.EXIF_ORIENTATION, plus_one=int(cfg.MODEL.LEGACY_PLUS_ONE),
                            filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
                            ignore_regions=cfg.MODEL.ATSS.IGNORE_CROWD)[0]
    if not 0 <= args.index < len(dataset):
        raise IndexError("--index {} is outside dataset {} ({} images)".format(args.index, name, len(dataset)))
    image_tensor, target, _ = dataset[args.index]
    model = build_detection_model(cfg)
    anchors_per_level = view.anchors_of(model, image_tensor, cfg.DATALOADER.SIZE_DIVISIBILITY)
    anchors = cat_boxlist(anchors_per_level).bbox
    by_type = view.assignments(model, anchors_per_level, target, args.types)
    atss_index = by_type["ATSS"] if "ATSS" in by_type else view.assignments(model, anchors_per_level, target,
                                                                           ["ATSS"])["ATSS"]
    rows, selection = view.atss_report(model, anchors_per_level, target, atss_index)
    names = dataset.class_names() if hasattr(dataset, "class_names") else None
    image = view.denormalized(cfg, image_tensor)
    os.makedirs(args.output, exist_ok=True)
    atss_picture = view.draw_assignment(image, target, anchors, atss_index, selection, names)
    cv2.imwrite(os.path.join(args.output, "assignment_ATSS.jpg"), view.legend(atss_picture))
    cv2.imwrite(os.path.join(args.output, "assignment_compare.jpg"),
                view.compare_panels(image, target, anchors, by_type, selection, names))
    levels = ["P{}".format(3 + i) for i in range(len(anchors_per_level))]
    table = view.markdown_table(rows, levels)
    with open(os.path.join(args.output, "assignment.md"), "w") as f:
        f.write("{} item {} ({}x{} after the test resize), TOPK {}:\n\n".format(
            name, args.index, image.shape[1], image.shape[0], cfg.MODEL.ATSS.TOPK) + table)
    summary = {"dataset": name, "index": args.index, "image_size": [image.shape[1], image.shape[0]],
               "anchors_per_level": [len(a) for a in anchors_per_level], "atss": rows,
               "positives": {t: int((g >= 0).sum()) for t, g in by_type.items()},
               "ignored": {t: int((g == view.IGNORE).sum()) for t, g in by_type.items()}}
    with open(os.path.join(args.output, "assignment.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(table, end="")
    print("positives: " + ", ".join("{} {}".format(t, n) for t, n in summary["positives"].items()))
    print("wrote assignment_ATSS.jpg, assignment_compare.jpg, assignment.md and assignment.json to " + args.output)


if __name__ == "__main__":
    run_cli(main)
