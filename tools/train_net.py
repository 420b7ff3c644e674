#!/usr/bin/env python
"""Trains ATSS, then evaluates on DATASETS.TEST.

    python tools/train_net.py --config-file configs/atss/atss_R_50_FPN_1x.yaml [KEY VALUE ...]
    python -m torch.distributed.launch --nproc_per_node=8 tools/train_net.py --config-file ...
    torchrun --nproc_per_node=8 tools/train_net.py --config-file ...

A run resumes from OUTPUT_DIR/last_checkpoint when there is one; MODEL.WEIGHT only
initialises the weights (fine-tuning starts at iteration 0). SIGINT/SIGTERM save a checkpoint
and exit 130/143; the same command resumes.
"""
from atss_core.engine.defaults import run_test, train
from atss_core.engine.launch import parse_args, process_group_closed_at_exit, setup
from atss_core.engine.tensorboard import make_tracker
from atss_core.utils.cli import run_cli


def main():
    args = parse_args("ATSS training", training=True)
    cfg, distributed, logger = setup(args, "train_net")
    with process_group_closed_at_exit(logger):
        tracker = make_tracker(cfg)
        try:
            model = train(cfg, args.local_rank, distributed, logger, tracker=tracker)
            if not args.skip_test:
                run_test(cfg, model, distributed, logger, tracker=tracker, iteration=cfg.SOLVER.MAX_ITER)
        finally:
            tracker.close()


if __name__ == "__main__":
    run_cli(main)
