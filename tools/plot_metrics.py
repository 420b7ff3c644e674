#!/usr/bin/env python
"""Draws a training run's OUTPUT_DIR/metrics.json as a PNG: the losses, the learning rate and
the metrics of the evaluations during training (SOLVER.TEST_PERIOD) against the iteration.

    python tools/plot_metrics.py OUTPUT_DIR/metrics.json [--output curves.png] [--metric KEY ...]

--metric: the evaluation keys to draw, as metrics.json writes them ("<dataset>/AP50"); by
default each dataset's AP (mAP for VOC). The PNG goes next to metrics.json unless --output.
"""
import argparse
import os

from atss_core.utils.cli import add_debug_flag, run_cli
from atss_core.utils.metrics_file import read_metrics
from atss_core.utils.metrics_plot import plot_metrics


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", help="a metrics.json written by tools/train_net.py")
    parser.add_argument("--output", default=None, help="the PNG to write (default: metrics.png beside the input)")
    parser.add_argument("--metric", action="append", default=None, help="an evaluation key to draw (repeatable)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    if not os.path.isfile(args.metrics):
        raise FileNotFoundError("metrics file not found: {}".format(args.metrics))
    records = read_metrics(args.metrics)
    output = args.output or os.path.join(os.path.dirname(os.path.abspath(args.metrics)), "metrics.png")
    drawn = plot_metrics(records, output, metrics=args.metric, title=os.path.basename(os.path.dirname(
        os.path.abspath(args.metrics))))
    print("wrote {} ({} records{})".format(output, len(records), "; metrics: " + ", ".join(drawn) if drawn else ""))


if __name__ == "__main__":
    run_cli(main)
