"""Shared start-up of train_net.py and test_net.py: arguments, config, distributed init, logging."""
import argparse
import os
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from atss_core.config import cfg  # noqa: E402
from atss_core.utils.collect_env import get_pretty_env_info  # noqa: E402
from atss_core.utils.comm import get_rank, synchronize  # noqa: E402
from atss_core.utils.logger import setup_logger  # noqa: E402


def parse_args(description, training):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to a yaml config file")
    # torch.distributed.launch passes --local_rank (older) or --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument("--local_rank", "--local-rank", dest="local_rank", type=int,
                        default=int(os.environ.get("LOCAL_RANK", 0)))
    if training:
        parser.add_argument("--skip-test", dest="skip_test", action="store_true",
                            help="do not evaluate the final model on DATASETS.TEST")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error instead of a one-line message")
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER,
                        help="config overrides as trailing KEY VALUE pairs")
    return parser.parse_args()


def check_batch_sizes(cfg, world_size, training, evaluating=True):
    """Batch sizes are global: each process takes an equal share (checked before any work, by
    the data loader's own rule)."""
    from atss_core.data.build import images_per_process

    if training:
        images_per_process(cfg.SOLVER.IMS_PER_BATCH, "SOLVER.IMS_PER_BATCH", world_size)
    if evaluating:
        images_per_process(cfg.TEST.IMS_PER_BATCH, "TEST.IMS_PER_BATCH", world_size)


def check_output_dir(path):
    """OUTPUT_DIR is created and written to at start-up, not when the first checkpoint is due."""
    if not path:
        return
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write_check_"):
            pass
    except OSError as error:
        raise PermissionError("OUTPUT_DIR {} cannot be written: {}".format(
            path, error.strerror or error)) from None


def setup(args, name):
    """Merges the config, initialises torch.distributed when WORLD_SIZE > 1 (NCCL on GPU, gloo on
    CPU), creates OUTPUT_DIR, logs the environment and saves the merged config there."""
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts or [])
    cfg.freeze()
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    distributed = world_size > 1
    check_batch_sizes(cfg, world_size, training=name == "train_net",
                      evaluating=not getattr(args, "skip_test", False))
    check_output_dir(cfg.OUTPUT_DIR)
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("MODEL.DEVICE is {!r} but no CUDA device is available: add `MODEL.DEVICE cpu` to the "
                         "command line".format(cfg.MODEL.DEVICE))
    if distributed:
        if cfg.MODEL.DEVICE.startswith("cuda"):
            torch.cuda.set_device(args.local_rank)
            backend = "nccl"
        else:
            backend = "gloo"
        torch.distributed.init_process_group(backend=backend, init_method="env://")
        synchronize()
    if cfg.OUTPUT_DIR:
        os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    logger = setup_logger("atss_core", cfg.OUTPUT_DIR, get_rank())
    logger.info("%s with %d process(es); arguments: %s", name, world_size, args)
    logger.info("environment:\n%s", get_pretty_env_info())
    if args.config_file:
        with open(args.config_file) as f:
            logger.info("config file %s:\n%s", args.config_file, f.read().rstrip())
    if cfg.OUTPUT_DIR and get_rank() == 0:
        path = os.path.join(cfg.OUTPUT_DIR, "config.yml")
        with open(path, "w") as f:
            f.write(cfg.dump())
        logger.info("merged config saved to %s", path)
    if cfg.TEST.BBOX_AUG.ENABLED:
        from atss_core.engine.bbox_aug import augmentation_runs

        try:
            runs = augmentation_runs(cfg)
        except ValueError as error:
            raise SystemExit(str(error)) from None
        logger.info("test-time augmentation: %d runs per image (min size, max size, flip, size range): %s",
                    len(runs), runs)
    from atss_core.data.datasets.evaluation.coco_eval import check_backend
    from atss_core.engine.precision import check_dtype

    check_backend(cfg.TEST.COCO_EVAL_BACKEND)
    try:
        check_dtype(cfg)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    return cfg, distributed, logger


def run_test(cfg, model, distributed, logger, tracker=None, iteration=0):
    """Evaluates ``model`` on every DATASETS.TEST entry; returns {dataset name: report}.
    ``tracker`` (TensorBoard) receives each report at step ``iteration``."""
    from atss_core.data.build import make_data_loader
    from atss_core.engine.inference import inference
    from atss_core.engine.precision import check_dtype

    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        model = model.module  # inference needs no gradient synchronisation
    reports = {}
    loaders = make_data_loader(cfg, is_train=False)
    for name, loader in zip(cfg.DATASETS.TEST, loaders):
        folder = os.path.join(cfg.OUTPUT_DIR, "inference", name.replace("/", "_").replace(":", "_")) \
            if cfg.OUTPUT_DIR else None
        reports[name] = inference(model, loader, name, torch.device(cfg.MODEL.DEVICE), output_folder=folder,
                                  logger=logger, use_amp=check_dtype(cfg),
                                  bbox_aug_cfg=cfg if cfg.TEST.BBOX_AUG.ENABLED else None,
                                  coco_backend=cfg.TEST.COCO_EVAL_BACKEND, tracker=tracker, iteration=iteration)
        synchronize()
    return reports
