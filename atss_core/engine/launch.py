"""Start-up of the training and evaluation commands (tools/train_net.py, tools/test_net.py):
arguments, config, start-up checks, distributed initialisation, logging."""
import argparse
import contextlib
import datetime
import os
import secrets
import socket
import tempfile
import time

import torch

from atss_core.config import cfg
from atss_core.data.build import images_per_process
from atss_core.data.datasets.evaluation.coco.coco_eval import check_backend, check_max_dets
from atss_core.engine.bbox_aug import augmentation_runs
from atss_core.engine.precision import check_dtype
from atss_core.engine.tiling import check_tile_settings
from atss_core.utils.cli import EXIT_ERROR, CommandError, add_debug_flag, parse_with_overrides
from atss_core.utils.collect_env import get_pretty_env_info
from atss_core.utils.comm import announce_finished, get_rank, synchronize, wait_for_main_process
from atss_core.utils.logger import setup_logger


def argument_parser(description, training):
    """The official command line: --config-file, --local_rank / --local-rank, trailing KEY VALUE
    overrides; --skip-test when ``training``; --debug."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to a yaml config file")
    # torch.distributed.launch passes --local_rank (older) or --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument("--local_rank", "--local-rank", dest="local_rank", type=int,
                        default=int(os.environ.get("LOCAL_RANK", 0)))
    if training:
        parser.add_argument("--skip-test", dest="skip_test", action="store_true",
                            help="do not evaluate the final model on DATASETS.TEST")
    add_debug_flag(parser)
    parser.add_argument("opts", default=None, nargs=argparse.REMAINDER,
                        help="config overrides as trailing KEY VALUE pairs")
    return parser


def parse_args(description, training, argv=None):
    return parse_with_overrides(argument_parser(description, training), argv)


def check_batch_sizes(cfg, world_size, training, evaluating=True):
    """Batch sizes are global: each process takes an equal share (checked before any work, by
    the data loader's own rule)."""
    if training:
        per_process = images_per_process(cfg.SOLVER.IMS_PER_BATCH, "SOLVER.IMS_PER_BATCH", world_size)
        steps = cfg.SOLVER.ACCUMULATE_STEPS
        if steps < 1 or per_process % steps:
            raise ValueError("SOLVER.ACCUMULATE_STEPS {} must be a positive divisor of the {} images each process "
                             "takes per iteration (SOLVER.IMS_PER_BATCH {} over {} process(es))".format(
                                 steps, per_process, cfg.SOLVER.IMS_PER_BATCH, world_size))
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


GROUP_STORE_KEY = "atss_core/group_store"
_group_store = None  # the process group's own store (init_distributed), also used at the end


def init_distributed(backend, timeout_seconds):
    """torch.distributed from the launcher's environment (RANK, WORLD_SIZE, MASTER_ADDR/PORT).

    The process group gets a store of its own, hosted by rank 0 and announced (address, port,
    a random token) through the launcher's store. torchrun restarts workers (--max-restarts)
    against the same launcher store, where gloo would otherwise read the dead workers'
    addresses and wait for them forever; an announcement left by a dead rank 0 points at a
    closed port (or at a store with another token) and is read again until the new one is
    there."""
    global _group_store
    timeout = datetime.timedelta(seconds=timeout_seconds)
    launcher_store, rank, world_size = next(torch.distributed.rendezvous("env://", timeout=timeout))
    if rank == 0:
        token = secrets.token_hex(8)
        store = torch.distributed.TCPStore(os.environ["MASTER_ADDR"], 0, world_size, True, timeout=timeout,
                                           wait_for_workers=False)
        store.set("token", token)
        launcher_store.set(GROUP_STORE_KEY, "{}:{}:{}".format(os.environ["MASTER_ADDR"], store.port, token))
    else:
        store = _join_group_store(launcher_store, world_size, timeout)
    torch.distributed.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=timeout)
    _group_store = store


def group_store():
    """The process group's own store (None outside a run started by init_distributed)."""
    return _group_store


@contextlib.contextmanager
def process_group_closed_at_exit(logger=None):
    """At the end of a command that ends normally or by a stop signal, the other ranks wait
    for rank 0 (only it evaluates; see comm.wait_for_main_process for why they must not leave
    first) and then every rank destroys the process group: a gloo group left to the
    interpreter's exit sometimes aborts the process (std::terminate, exit -6) instead of
    exiting 0. After an error a collective may still be pending, where NCCL's teardown can
    block, so those exits are left as they are."""
    global _group_store
    clean = False
    try:
        yield
        clean = True
    except CommandError as error:
        clean = error.exit_status != EXIT_ERROR
        raise
    finally:
        if clean and torch.distributed.is_initialized():
            if _group_store is not None:
                rank, world_size = torch.distributed.get_rank(), torch.distributed.get_world_size()
                if rank == 0:
                    announce_finished(_group_store, world_size, logger)
                else:
                    wait_for_main_process(_group_store, rank, world_size, logger)
            torch.distributed.destroy_process_group()
            _group_store = None


def _join_group_store(launcher_store, world_size, timeout):
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        host, port, token = launcher_store.get(GROUP_STORE_KEY).decode().rsplit(":", 2)
        try:  # a plain connect first: a dead rank 0's port refuses at once, without c10d's retry noise
            socket.create_connection((host, int(port)), timeout=5).close()
            store = torch.distributed.TCPStore(host, int(port), world_size, False, timeout=timeout)
            if store.get("token").decode() == token:
                return store
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("rank 0's process-group store ({}:{}) did not answer within DIST_TIMEOUT ({:.0f} s)"
                               .format(host, port, timeout.total_seconds()))
        time.sleep(0.2)


def node_replacement_warning(environ=os.environ):
    """torchrun's c10d rendezvous shares its store with the workers by default, and a node that
    is started again after a failure then waits forever for the address of the new round's
    store (pytorch/pytorch#135712). Multi-node runs with --max-restarts need
    TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 set for torchrun; this says so when it is missing."""
    nodes = int(environ.get("GROUP_WORLD_SIZE", 1))
    restarts = int(environ.get("TORCHELASTIC_MAX_RESTARTS", 0))
    if nodes > 1 and restarts > 0 and environ.get("TORCH_DISABLE_SHARE_RDZV_TCP_STORE") != "1":
        return ("{} nodes with --max-restarts {}: a node started again after a failure cannot rejoin unless "
                "torchrun runs with TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 on every node (pytorch/pytorch#135712)"
                .format(nodes, restarts))
    return None


def check_device(cfg):
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("MODEL.DEVICE is {!r} but no CUDA device is available: add `MODEL.DEVICE cpu` to the "
                         "command line".format(cfg.MODEL.DEVICE))


def setup(args, name):
    """Merges the config, checks it, initialises torch.distributed when WORLD_SIZE > 1 (NCCL on
    GPU, gloo on CPU), creates OUTPUT_DIR, logs the environment and saves the merged config
    there. Returns (cfg, distributed, logger)."""
    if args.config_file:
        cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts or [])
    cfg.freeze()
    world_size = int(os.environ.get("WORLD_SIZE", 1))
    distributed = world_size > 1
    check_batch_sizes(cfg, world_size, training=name == "train_net",
                      evaluating=not getattr(args, "skip_test", False))
    check_output_dir(cfg.OUTPUT_DIR)
    check_device(cfg)
    check_backend(cfg.TEST.COCO_EVAL_BACKEND)
    check_max_dets(cfg.TEST.COCO_MAX_DETS)
    check_tile_settings(cfg)
    check_dtype(cfg)
    runs = augmentation_runs(cfg) if cfg.TEST.BBOX_AUG.ENABLED else None
    if distributed:
        if cfg.MODEL.DEVICE.startswith("cuda"):
            torch.cuda.set_device(args.local_rank)
            backend = "nccl"
        else:
            backend = "gloo"
        init_distributed(backend, cfg.DIST_TIMEOUT)
        synchronize("the start-up")
    logger = setup_logger("atss_core", cfg.OUTPUT_DIR, get_rank())
    logger.info("%s with %d process(es); arguments: %s", name, world_size, args)
    logger.info("environment:\n%s", get_pretty_env_info())
    warning = node_replacement_warning() if distributed else None
    if warning:
        logger.warning(warning)
    if args.config_file:
        with open(args.config_file) as f:
            logger.info("config file %s:\n%s", args.config_file, f.read().rstrip())
    if cfg.OUTPUT_DIR and get_rank() == 0:
        path = os.path.join(cfg.OUTPUT_DIR, "config.yml")
        with open(path, "w") as f:
            f.write(cfg.dump())
        logger.info("merged config saved to %s", path)
    if cfg.TEST.COCO_MAX_DETS[-1] > cfg.TEST.DETECTIONS_PER_IMG:
        logger.warning("TEST.COCO_MAX_DETS %s counts up to %d detections per image but the model keeps at most "
                       "TEST.DETECTIONS_PER_IMG = %d: raise it to score dense images fully",
                       tuple(cfg.TEST.COCO_MAX_DETS), cfg.TEST.COCO_MAX_DETS[-1], cfg.TEST.DETECTIONS_PER_IMG)
    if runs:
        logger.info("test-time augmentation: %d runs per image (min size, max size, flip, size range): %s",
                    len(runs), runs)
    return cfg, distributed, logger
