#!/usr/bin/env python
"""Runs a trained ATSS model on an image or a folder of images and writes annotated copies.

    python demo/atss_demo.py --config-file configs/quickstart/atss_R_18_synthetic.yaml \\
        --weights output/quickstart/model_final.pth --input path/to/images --output output/demo [--json]

Class names come from --class-names (comma separated, background first is added for you)
or default to "class k". --confidence-threshold applies to every class. --onnx FILE runs a
model exported by tools/export_onnx.py (with the same config) in onnxruntime instead.
"""
import argparse
import glob
import json
import os
import sys

import cv2

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from atss_core.config import cfg as default_cfg  # noqa: E402
from atss_core.utils.cli import run_cli  # noqa: E402
from predictor import ATSSDemo  # noqa: E402

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--weights", default="", help="checkpoint (default: MODEL.WEIGHT of the config)")
    parser.add_argument("--onnx", default="", help="run this tools/export_onnx.py file with onnxruntime instead")
    parser.add_argument("--input", required=True, help="an image file or a folder of images")
    parser.add_argument("--output", required=True, help="folder for the annotated images")
    parser.add_argument("--confidence-threshold", type=float, default=0.5)
    parser.add_argument("--class-names", default="", help="comma-separated names of classes 1..C")
    parser.add_argument("--json", action="store_true", help="also write detections.json")
    parser.add_argument("--debug", action="store_true", help="full traceback on errors")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")
    return parser.parse_args(argv)


def list_images(path):
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        files = sorted(f for f in glob.glob(os.path.join(path, "*")) if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise SystemExit("no image ({}) in {}".format(", ".join(IMAGE_EXTENSIONS), path))
        return files
    raise SystemExit("input not found: {}".format(path))


def main(argv=None):
    args = parse_args(argv)
    cfg = default_cfg.clone()
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts or [])
    names = None
    if args.class_names:
        names = ["__background__"] + [n.strip() for n in args.class_names.split(",")]
    if args.onnx:
        from onnx_predictor import ONNXDemo

        demo = ONNXDemo(cfg, args.onnx, confidence_threshold=args.confidence_threshold, class_names=names)
    else:
        demo = ATSSDemo(cfg, weights=args.weights or None, confidence_threshold=args.confidence_threshold,
                        class_names=names)
    os.makedirs(args.output, exist_ok=True)
    records = {}
    for path in list_images(args.input):
        image = cv2.imread(path)
        if image is None:
            print("skipping {}: not a readable image".format(path))
            continue
        annotated, detections = demo.run_on_opencv_image(image)
        name = os.path.basename(path)
        cv2.imwrite(os.path.join(args.output, name), annotated)
        records[name] = [{"box_xyxy": [round(v, 2) for v in box], "score": round(score, 4),
                          "label": demo.class_names[label]}
                         for box, score, label in zip(detections.bbox.tolist(), detections.get_field("scores").tolist(),
                                                      detections.get_field("labels").tolist())]
        print("{}: {} detections".format(name, len(records[name])))
    if args.json:
        with open(os.path.join(args.output, "detections.json"), "w") as f:
            json.dump(records, f, indent=1)
    print("annotated images in {}".format(args.output))


if __name__ == "__main__":
    run_cli(main)
