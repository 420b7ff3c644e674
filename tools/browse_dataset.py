#!/usr/bin/env python
"""Writes training samples after the whole pipeline (the sampler, every INPUT augmentation,
the resize) as JPEGs with their boxes, class names and ignore regions, as mmdetection's
browse_dataset: a look at what the model trains on, to check a conversion or an augmentation.

    python tools/browse_dataset.py --config-file CONFIG --output DIR [--num 16] [--seed S] [KEY VALUE ...]

The samples are those a training run with this config draws first, on one process: SEED (or
--seed) decides them as it decides the run's.
"""
import argparse
import os

import cv2

from atss_core.config import load_config
from atss_core.data.browse import draw_training_sample, training_samples
from atss_core.structures.boxlist_ops import split_ignore_regions
from atss_core.utils.cli import add_debug_flag, parse_with_overrides, run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--output", required=True, help="folder for the pictures")
    parser.add_argument("--num", type=int, default=16, help="how many samples (default 16)")
    parser.add_argument("--seed", type=int, default=None, help="instead of the config's SEED (a negative SEED: 0)")
    add_debug_flag(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")
    return parse_with_overrides(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    if args.num <= 0:
        raise ValueError("--num must be positive, got {}".format(args.num))
    cfg = load_config(args.config_file, ["MODEL.DEVICE", "cpu"] + (args.opts or []))
    seed = args.seed if args.seed is not None else max(cfg.SEED, 0)
    # enough iterations for --num samples whatever SOLVER.MAX_ITER says
    cfg.merge_from_list(["SOLVER.MAX_ITER", -(-args.num // cfg.SOLVER.IMS_PER_BATCH) + 1])
    cfg.freeze()
    os.makedirs(args.output, exist_ok=True)
    names, samples = training_samples(cfg, args.num, seed)
    written, boxes, regions, empty = 0, 0, 0, 0
    for position, (image, target, index) in enumerate(samples):
        objects, ignored = split_ignore_regions(target)
        path = os.path.join(args.output, "sample_{:03d}_image{}.jpg".format(position, index))
        cv2.imwrite(path, draw_training_sample(image, target, names))
        written += 1
        boxes += len(objects)
        regions += 0 if ignored is None else len(ignored)
        empty += len(objects) == 0
    print("wrote {} training samples to {}: {} boxes, {} ignore regions, {} without objects".format(
        written, args.output, boxes, regions, empty))


if __name__ == "__main__":
    run_cli(main)
