#!/usr/bin/env python
"""Runs a trained ATSS model on an image or a folder of images and writes annotated copies.

    python demo/atss_demo.py --config-file configs/quickstart/atss_R_18_synthetic.yaml \\
        --weights output/quickstart/model_final.pth --input path/to/images --output output/demo [--json]

Class names come from --class-names (comma separated, background first is added for you),
else from the weights file (our checkpoints and mmdetection's record them; an ONNX file of
tools/export_onnx.py in its metadata), else COCO's for 81 classes and "class k" otherwise.
--confidence-threshold applies to every class. --onnx FILE runs a model exported by
tools/export_onnx.py (with the same config) in onnxruntime instead.
"""
import argparse
import json
import os

import cv2

from atss_core.config import load_config
from atss_core.data.datasets.image_io import list_images
from atss_core.engine.predictor import ATSSDemo, detections_to_records, parse_class_names
from atss_core.utils.cli import add_debug_flag, parse_with_overrides, run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--weights", default="", help="checkpoint (default: MODEL.WEIGHT of the config)")
    parser.add_argument("--onnx", default="", help="run this tools/export_onnx.py file with onnxruntime instead")
    parser.add_argument("--input", required=True, help="an image file or a folder of images")
    parser.add_argument("--output", required=True, help="folder for the annotated images")
    parser.add_argument("--confidence-threshold", type=float, default=0.5)
    parser.add_argument("--class-names", default="",
                        help="comma-separated names of classes 1..C (default: those the weights record)")
    parser.add_argument("--json", action="store_true", help="also write detections.json")
    add_debug_flag(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")
    return parse_with_overrides(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    images = list_images(args.input)
    cfg = load_config(args.config_file, args.opts)
    names = parse_class_names(args.class_names)
    if args.onnx:
        from atss_core.export.predictor import ONNXDemo

        demo = ONNXDemo(cfg, args.onnx, confidence_threshold=args.confidence_threshold, class_names=names)
    else:
        demo = ATSSDemo(cfg, weights=args.weights or None, confidence_threshold=args.confidence_threshold,
                        class_names=names)
    os.makedirs(args.output, exist_ok=True)
    records = {}
    for path in images:
        image = cv2.imread(path)
        if image is None:
            print("skipping {}: not a readable image".format(path))
            continue
        annotated, detections = demo.run_on_opencv_image(image)
        name = os.path.basename(path)
        cv2.imwrite(os.path.join(args.output, name), annotated)
        records[name] = detections_to_records(detections, demo.class_names)
        print("{}: {} detections".format(name, len(records[name])))
    if args.json:
        with open(os.path.join(args.output, "detections.json"), "w") as f:
            json.dump(records, f, indent=1)
    print("annotated images in {}".format(args.output))


if __name__ == "__main__":
    run_cli(main)
