#!/usr/bin/env python
"""Trains ATSS, then evaluates on DATASETS.TEST.

    python tools/train_net.py --config-file configs/atss/atss_R_50_FPN_1x.yaml [KEY VALUE ...]
    python -m torch.distributed.launch --nproc_per_node=8 tools/train_net.py --config-file ...
    torchrun --nproc_per_node=8 tools/train_net.py --config-file ...

A run resumes from OUTPUT_DIR/last_checkpoint when there is one; MODEL.WEIGHT only
initialises the weights (fine-tuning starts at iteration 0).
"""
import torch

from _launch import parse_args, run_test, setup

from atss_core.data.build import make_data_loader
from atss_core.engine.precision import check_dtype
from atss_core.engine.trainer import do_train
from atss_core.modeling.detector import build_detection_model
from atss_core.solver import make_lr_scheduler, make_optimizer
from atss_core.utils.checkpoint import Checkpointer
from atss_core.utils.cli import run_cli
from atss_core.utils.comm import get_rank
from atss_core.utils.seed import resolve_seed, seed_everything
from atss_core.utils.tensorboard import make_tracker


def train(cfg, local_rank, distributed, logger, log_period=20, progress=False, history=None, tracker=None):
    """Builds the model, resumes or loads MODEL.WEIGHT, and trains to SOLVER.MAX_ITER
    (``progress``/``history``/``tracker``: see do_train). Returns the model (DDP-wrapped when distributed).
    The run's seed (SEED, or the random one it drew) is saved in its checkpoints and a resumed
    run continues with it."""
    seed = resolve_seed(cfg.SEED)
    seed_everything(seed)
    model = build_detection_model(cfg)
    device = torch.device(cfg.MODEL.DEVICE)
    model.to(device)
    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    checkpointer = Checkpointer(cfg, model, optimizer, scheduler, cfg.OUTPUT_DIR, save_to_disk=get_rank() == 0,
                                logger=logger)
    arguments = {"iteration": 0, "seed": seed}
    arguments.update({k: v for k, v in checkpointer.load(cfg.MODEL.WEIGHT).items()
                      if k in ("iteration", "seed", "grad_scaler")})
    if arguments["seed"] != seed:
        logger.info("resumed run: continuing with its seed %d (SEED is %d)", arguments["seed"], cfg.SEED)
    logger.info("seed %d", arguments["seed"])
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None, broadcast_buffers=False)
    if arguments["iteration"] >= cfg.SOLVER.MAX_ITER:
        logger.info("already trained to iteration %d (SOLVER.MAX_ITER %d)", arguments["iteration"],
                    cfg.SOLVER.MAX_ITER)
        return model
    data_loader = make_data_loader(cfg, is_train=True, start_iter=arguments["iteration"], seed=arguments["seed"])
    do_train(model, data_loader, optimizer, scheduler, checkpointer, device, cfg.SOLVER.CHECKPOINT_PERIOD,
             arguments, log_period=log_period, logger=logger, use_amp=check_dtype(cfg), progress=progress,
             history=history, tracker=tracker)
    return model


def main():
    args = parse_args("ATSS training", training=True)
    cfg, distributed, logger = setup(args, "train_net")
    tracker = make_tracker(cfg)
    try:
        model = train(cfg, args.local_rank, distributed, logger, tracker=tracker)
        if not args.skip_test:
            run_test(cfg, model, distributed, logger, tracker=tracker, iteration=cfg.SOLVER.MAX_ITER)
    finally:
        tracker.close()


if __name__ == "__main__":
    run_cli(main)
