#!/usr/bin/env python
"""Draws training runs' OUTPUT_DIR/metrics.json as a PNG: the losses, the learning rate and the
metrics of the evaluations during training (SOLVER.TEST_PERIOD) against the iteration.

    python tools/plot_metrics.py OUTPUT_DIR/metrics.json [--output curves.png] [--metric KEY ...]
    python tools/plot_metrics.py runs/a/metrics.json runs/b/metrics.json --output compare.png

Several files are drawn over each other, each named by its folder. --metric: the evaluation
keys to draw, as metrics.json writes them ("<dataset>/AP50"); by default each dataset's AP
(mAP for VOC). The PNG goes next to the (first) metrics.json unless --output says otherwise.
"""
import argparse
import os

from atss_core.utils.cli import add_debug_flag, run_cli
from atss_core.utils.metrics_file import read_metrics
from atss_core.utils.metrics_plot import plot_metrics


def run_name(path):
    return os.path.basename(os.path.dirname(os.path.abspath(path))) or path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", nargs="+", help="metrics.json files written by tools/train_net.py")
    parser.add_argument("--output", default=None, help="the PNG to write (default: metrics.png beside the input)")
    parser.add_argument("--metric", action="append", default=None, help="an evaluation key to draw (repeatable)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    runs = {}
    for path in args.metrics:
        if not os.path.isfile(path):
            raise FileNotFoundError("metrics file not found: {}".format(path))
        name = run_name(path)
        runs[name if name not in runs else path] = read_metrics(path)
    output = args.output or os.path.join(os.path.dirname(os.path.abspath(args.metrics[0])), "metrics.png")
    drawn = plot_metrics(runs, output, metrics=args.metric, title=", ".join(runs) if len(runs) == 1 else None)
    count = sum(len(records) for records in runs.values())
    print("wrote {} ({} run(s), {} records{})".format(output, len(runs), count,
                                                      "; metrics: " + ", ".join(drawn) if drawn else ""))


if __name__ == "__main__":
    run_cli(main)
