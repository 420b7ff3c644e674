#!/usr/bin/env python
"""Live ATSS detections on a camera or a video file, shown in a window or written to a video.

    python demo/webcam.py --config-file CONFIG --weights W.pth [--camera 0 | --video-input in.mp4]
                          [--output out.mp4] [--no-display] [--max-frames N]

The frame rate is drawn on each frame. Without a display (servers, CI) use --output with
--no-display.
"""
import argparse
import time

import cv2

from atss_core.config import load_config
from atss_core.data.datasets.image_io import open_video
from atss_core.engine.predictor import ATSSDemo, parse_class_names
from atss_core.utils.cli import add_debug_flag, parse_with_overrides, run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--weights", default="")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--camera", type=int, default=0, help="camera index (default 0)")
    source.add_argument("--video-input", default="", help="a video file instead of a camera")
    parser.add_argument("--output", default="", help="write the annotated video here (mp4)")
    parser.add_argument("--no-display", action="store_true", help="do not open a window")
    parser.add_argument("--max-frames", type=int, default=0, help="stop after this many frames (0: all)")
    parser.add_argument("--confidence-threshold", type=float, default=0.5)
    parser.add_argument("--class-names", default="",
                        help="comma-separated names of classes 1..C (default: those the weights record)")
    add_debug_flag(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")
    return parse_with_overrides(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    if args.no_display and not args.output:
        raise ValueError("--no-display needs --output, or nothing would be shown or saved")
    cfg = load_config(args.config_file, args.opts)
    names = parse_class_names(args.class_names)
    demo = ATSSDemo(cfg, weights=args.weights or None, confidence_threshold=args.confidence_threshold,
                    class_names=names)
    capture, what = open_video(args.video_input, args.camera)
    writer = None
    frames = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                if frames == 0:
                    raise ValueError("{} gave no frame".format(what))
                break
            start = time.time()
            annotated, _ = demo.run_on_opencv_image(frame)
            fps = 1.0 / max(time.time() - start, 1e-6)
            cv2.putText(annotated, "{:.1f} FPS".format(fps), (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
            if args.output:
                if writer is None:
                    height, width = annotated.shape[:2]
                    rate = capture.get(cv2.CAP_PROP_FPS) or 10.0
                    writer = cv2.VideoWriter(args.output, cv2.VideoWriter_fourcc(*"mp4v"), rate, (width, height))
                    if not writer.isOpened():
                        raise RuntimeError("could not open {} for writing".format(args.output))
                writer.write(annotated)
            if not args.no_display:
                cv2.imshow("ATSS", annotated)
                if cv2.waitKey(1) == 27:  # Esc
                    break
            frames += 1
            if args.max_frames and frames >= args.max_frames:
                break
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        if not args.no_display:
            cv2.destroyAllWindows()
    print("{} frames from {}{}".format(frames, what, " written to " + args.output if args.output else ""))


if __name__ == "__main__":
    run_cli(main)
