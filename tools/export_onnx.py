#!/usr/bin/env python
"""Exports the whole ATSS detector to ONNX and checks the export with onnxruntime.

    python tools/export_onnx.py --config-file configs/atss/atss_R_50_FPN_1x.yaml \\
        --output atss_r50.onnx MODEL.WEIGHT ATSS_R_50_FPN_1x.pth [KEY VALUE ...]

What the graph holds, its inputs and outputs: atss_core/export/onnx.py. After exporting,
onnxruntime and the eager model run on the same input and their agreement is printed (at
--size and at each of the --check-sizes, comma separated).

--static HxW: a fixed 1 x 3 x H x W input (for accelerators that want static shapes); it is
traced and checked at that size only, and refuses another with a message.
--no-nms: the graph ends at the per-level class scores, centerness and decoded boxes
(atss_core/export/raw.py); raw.postprocess() (numpy) turns them into the full graph's detections,
and that is what the check compares with the eager model.
--fp16: the backbone, FPN and head in float16 (atss_core/export/precision.py), inputs, outputs
and post-processing in float32; checked against the eager float32 model with the stated
tolerance (score within 1e-2, IoU >= 0.9).
--int8 DATASET: static int8 quantization of the backbone, FPN and head by onnxruntime
(atss_core/export/quantize.py), calibrated on --calibration-images images of DATASET (a
DATASETS entry); the post-processing stays float32.
--evaluate DATASET: the COCO AP of the written graph and of the eager model on DATASET.
"""
import argparse
import os

from atss_core.config import load_config
from atss_core.export.onnx import build_model, check_export, export
from atss_core.export.precision import FP16_IOU_MIN, FP16_SCORE_TOLERANCE, convert_to_fp16
from atss_core.export.quantize import (INT8_IOU_MIN, INT8_SCORE_TOLERANCE, DatasetCalibrationReader,
                                       coco_evaluation_of, eager_evaluation_of, quantize_int8)
from atss_core.export.raw import export_raw
from atss_core.utils.cli import CommandError, add_debug_flag, parse_size, parse_with_overrides, run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--output", required=True, help="the .onnx file to write")
    parser.add_argument("--size", default="800x1216", help="HxW of the sample used to trace and check")
    parser.add_argument("--check-sizes", default="608x800", help="more HxW sizes to check, comma separated")
    parser.add_argument("--static", metavar="HxW", help="export a fixed 1x3xHxW input shape")
    parser.add_argument("--fp16", action="store_true", help="the backbone, FPN and head in float16")
    parser.add_argument("--int8", metavar="DATASET", help="static int8 quantization calibrated on this dataset")
    parser.add_argument("--calibration-images", type=int, default=64, help="--int8: images used to calibrate")
    parser.add_argument("--evaluate", metavar="DATASET", help="print the AP of the graph and of the eager model")
    parser.add_argument("--no-nms", action="store_true",
                        help="end the graph at the per-level scores and decoded boxes (raw.postprocess does the rest)")
    add_debug_flag(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")
    return parse_with_overrides(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    size = parse_size(args.size)
    check_sizes = [parse_size(s) for s in args.check_sizes.split(",") if s]
    if args.static:
        size, check_sizes = parse_size(args.static), []
    if args.fp16 and args.int8:
        raise CommandError("--fp16 and --int8 exclude each other")
    cfg = load_config(args.config_file, ["MODEL.DEVICE", "cpu"] + (args.opts or []), freeze=True)
    if not cfg.MODEL.WEIGHT:
        print("warning: MODEL.WEIGHT is empty: exporting randomly initialised weights")
    # the calibration data is opened first: a bad dataset name fails before the export's work
    reader = DatasetCalibrationReader(cfg, args.int8, args.calibration_images) if args.int8 else None
    model = build_model(cfg)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    written = args.output + ".fp32.tmp" if args.fp16 or args.int8 else args.output
    if args.no_nms:
        export_raw(model, cfg, written, *size, static=bool(args.static))
    else:
        export(model, cfg, written, *size, static=bool(args.static))
    tolerance = {}
    try:
        if args.fp16:
            converted, kept = convert_to_fp16(written, args.output)
            tolerance = dict(score_tol=FP16_SCORE_TOLERANCE, iou_min=FP16_IOU_MIN)
            print("float16: {} nodes (backbone, FPN, head); {} post-processing nodes kept in float32".format(
                converted, kept))
        elif args.int8:
            summary = quantize_int8(written, args.output, reader)
            tolerance = dict(score_tol=INT8_SCORE_TOLERANCE, iou_min=INT8_IOU_MIN)
            print("int8: {quantized_convs} convolutions quantized ({qdq_nodes} QuantizeLinear/DequantizeLinear "
                  "nodes), {float_convs} left in float; calibrated on {0} images of {1}".format(
                      reader.count, args.int8, **summary))
    finally:
        if written != args.output:
            os.remove(written)
    print("wrote", args.output, "({}{}{})".format("no NMS" if args.no_nms else "full graph",
                                                  ", fixed input 1x3x{}x{}".format(*size) if args.static else "",
                                                  ", float16" if args.fp16 else ", int8" if args.int8 else ""))
    for (height, width), fraction, eager_count, onnx_count in check_export(model, args.output, [size] + check_sizes,
                                                                            raw=args.no_nms, **tolerance):
        print("{}x{}: {:.1%} of the {} eager detections matched by onnxruntime ({} detections)".format(
            height, width, fraction, eager_count, onnx_count))
    if args.evaluate:
        exported_ap = coco_evaluation_of(args.output, cfg, args.evaluate)["bbox"]["AP"]
        eager_ap = eager_evaluation_of(model, cfg, args.evaluate)["bbox"]["AP"]
        print("AP on {}: {:.4f} exported, {:.4f} eager ({:+.2f} points)".format(
            args.evaluate, exported_ap, eager_ap, 100 * (exported_ap - eager_ap)))


if __name__ == "__main__":
    run_cli(main)
