#!/usr/bin/env python
"""Evaluates a trained ATSS model on DATASETS.TEST (COCO metrics).

    python tools/test_net.py --config-file configs/atss/atss_R_50_FPN_1x.yaml MODEL.WEIGHT model.pth
    torchrun --nproc_per_node=8 tools/test_net.py --config-file ... MODEL.WEIGHT model.pth

Weights: MODEL.WEIGHT when it names a checkpoint; OUTPUT_DIR/last_checkpoint when MODEL.WEIGHT
is empty or the configs' ImageNet backbone weights (catalog://..., .pkl).
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
    # MODEL.WEIGHT names the weights to evaluate, unless it is the configs' ImageNet backbone
    # (catalog:// or a Detectron .pkl): then the training run in OUTPUT_DIR is evaluated
    backbone_only = cfg.MODEL.WEIGHT.startswith("catalog://") or cfg.MODEL.WEIGHT.endswith(".pkl")
    if cfg.MODEL.WEIGHT and not backbone_only:
        checkpointer.load(cfg.MODEL.WEIGHT, use_latest=False, strict=True)
    elif checkpointer.has_checkpoint():
        checkpointer.load()
    elif backbone_only:
        raise ValueError("MODEL.WEIGHT {} holds ImageNet backbone weights only, not a detector: set MODEL.WEIGHT to "
                         "a trained checkpoint (.pth) or OUTPUT_DIR to a training run".format(cfg.MODEL.WEIGHT))
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
