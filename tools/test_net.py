#!/usr/bin/env python
"""Evaluates a trained ATSS model on DATASETS.TEST (COCO metrics).

    python tools/test_net.py --config-file configs/atss/atss_R_50_FPN_1x.yaml MODEL.WEIGHT model.pth
    torchrun --nproc_per_node=8 tools/test_net.py --config-file ... MODEL.WEIGHT model.pth

Weights: MODEL.WEIGHT when given, else OUTPUT_DIR/last_checkpoint.
"""
import torch

from _launch import parse_args, run_test, setup

from atss_core.modeling.detector import build_detection_model
from atss_core.modeling.fusion import optimize_for_inference
from atss_core.utils.checkpoint import Checkpointer
from atss_core.utils.cli import run_cli
from atss_core.utils.tensorboard import make_tracker


def main():
    args = parse_args("ATSS evaluation", training=False)
    cfg, distributed, logger = setup(args, "test_net")
    model = build_detection_model(cfg)
    model.to(torch.device(cfg.MODEL.DEVICE))
    checkpointer = Checkpointer(cfg, model, save_dir=cfg.OUTPUT_DIR, logger=logger)
    if cfg.MODEL.WEIGHT:
        checkpointer.load(cfg.MODEL.WEIGHT, use_latest=False, strict=True)
    elif checkpointer.has_checkpoint():
        checkpointer.load()
    else:
        raise SystemExit("no weights to evaluate: set MODEL.WEIGHT or point OUTPUT_DIR at a training run")
    if cfg.TEST.OPTIMIZE_FOR_INFERENCE:
        optimize_for_inference(model, channels_last=torch.device(cfg.MODEL.DEVICE).type == "cpu")
    tracker = make_tracker(cfg)
    try:
        run_test(cfg, model, distributed, logger, tracker=tracker)
    finally:
        tracker.close()


if __name__ == "__main__":
    run_cli(main)
