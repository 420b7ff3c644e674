#!/usr/bin/env python
"""Evaluates a trained ATSS model on DATASETS.TEST (COCO metrics).

    python tools/test_net.py --config-file configs/atss/atss_R_50_FPN_1x.yaml MODEL.WEIGHT model.pth
    torchrun --nproc_per_node=8 tools/test_net.py --config-file ... MODEL.WEIGHT model.pth

Weights: MODEL.WEIGHT when it names a checkpoint; OUTPUT_DIR/last_checkpoint when MODEL.WEIGHT
is empty or the configs' ImageNet backbone weights (catalog://..., torchvision://..., .pkl).
"""
from atss_core.engine.defaults import load_model_for_evaluation, run_test
from atss_core.engine.launch import parse_args, process_group_closed_at_exit, setup
from atss_core.engine.tensorboard import make_tracker
from atss_core.utils.cli import run_cli


def main():
    args = parse_args("ATSS evaluation", training=False)
    cfg, distributed, logger = setup(args, "test_net")
    with process_group_closed_at_exit(logger):
        model = load_model_for_evaluation(cfg, logger)
        tracker = make_tracker(cfg)
        try:
            run_test(cfg, model, distributed, logger, tracker=tracker)
        finally:
            tracker.close()


if __name__ == "__main__":
    run_cli(main)
