#!/usr/bin/env python
"""The ATSS paper's assignment ablation as one command: a grid of tools/train_net.py runs.

    python tools/ablation.py --config-file configs/atss/atss_R_50_FPN_1x.yaml --output ablation \\
        [--positive-types ATSS SSC IoU TOPK] [--regression-types BOX POINT] [--anchors 1 9] \\
        [--seeds 0 1 2] [--launcher "torchrun --nproc_per_node 8"] [--jobs N] [--dry-run] [--paper] \\
        [KEY VALUE ...]

Each cell (MODEL.ATSS.POSITIVE_TYPE x MODEL.ATSS.REGRESSION_TYPE x anchors per location; 9 =
3 scales x aspect ratios 0.5, 1, 2; POINT x 9 is skipped) and seed trains and tests in
OUTPUT/<cell>/seed_<s> (its output in ablation_run.log there); runs with a coco_metrics.json
are skipped, others resume. AP, AP50 and AP75 on the first DATASETS.TEST entry go to
OUTPUT/ablation.md, ablation.json and ablation.png.
"""
import argparse

from atss_core.benchmark.ablation import POSITIVE_TYPES, REGRESSION_TYPES, run_ablation
from atss_core.utils.cli import add_debug_flag, parse_with_overrides, run_cli


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="the base config of every run")
    parser.add_argument("--output", required=True, help="folder of the runs and the reports")
    parser.add_argument("--positive-types", nargs="+", default=list(POSITIVE_TYPES), metavar="TYPE",
                        help="MODEL.ATSS.POSITIVE_TYPE values (default: all)")
    parser.add_argument("--regression-types", nargs="+", default=list(REGRESSION_TYPES), metavar="TYPE",
                        help="MODEL.ATSS.REGRESSION_TYPE values (default: all)")
    parser.add_argument("--anchors", nargs="+", type=int, default=[1], choices=(1, 9),
                        help="anchors per location: 1 (the config's) and/or 9")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="a run per seed (SEED)")
    parser.add_argument("--launcher", default=None,
                        help='words run before tools/train_net.py instead of python, e.g. '
                             '"torchrun --nproc_per_node 8"')
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs side by side (with a multi-process --launcher, let each run find its own port, "
                             "e.g. torchrun --standalone)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--paper", action="store_true", help="add the paper's COCO AP as a column")
    add_debug_flag(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides of every run, KEY VALUE pairs")
    return parse_with_overrides(parser, argv)


def main(argv=None):
    args = parse_args(argv)
    run_ablation(args.config_file, args.output, positive_types=args.positive_types,
                 regression_types=args.regression_types, anchors=args.anchors, seeds=args.seeds,
                 opts=args.opts, launcher=args.launcher, jobs=args.jobs, dry_run=args.dry_run, paper=args.paper)


if __name__ == "__main__":
    run_cli(main)
