#!/usr/bin/env python
"""One command for whoever has a GPU (`make gpu-check`): proves that atss_core runs there.

    python tools/gpu_check.py [--iterations 300] [--json output/gpu_check.json] [--output-dir DIR]
                              [--budget-s SECONDS]

The steps (CUDA build, CUDA tests, ops and model benchmarks, quickstart training on the GPU
against the CPU) are described in atss_core/benchmark/gpu_check.py. Prints one summary table,
writes it as JSON (rewritten after every step, so a run cut short still reports the steps it
finished), and exits non-zero when any step fails; on a machine without a GPU it stops at once
with a message saying so.
"""
import argparse
import os
import sys

from atss_core.benchmark.gpu_check import ROOT, run_checks
from atss_core.utils.cli import add_debug_flag, run_cli


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=300, help="GPU training iterations per precision")
    parser.add_argument("--json", default=os.path.join(ROOT, "output", "gpu_check.json"),
                        help="the summary, rewritten after every step")
    parser.add_argument("--output-dir", default=None,
                        help="where the steps write (ops.json, training runs); default: gpu_check/ beside --json")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="start no step after this many seconds (the steps left are reported as not run)")
    add_debug_flag(parser)
    args = parser.parse_args(argv)
    return 0 if run_checks(args.iterations, args.json, args.output_dir, args.budget_s) else 1


if __name__ == "__main__":
    sys.exit(run_cli(main))
