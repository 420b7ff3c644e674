"""What the commands do, as functions: train a model from a config (with the default hooks),
evaluate it on DATASETS.TEST, and load the weights to evaluate. tools/train_net.py,
tools/test_net.py and tools/quickstart.py call these after engine/launch.py's start-up."""
import os

import torch

from atss_core.config.paths_catalog import dataset_folder_name
from atss_core.data.build import make_data_loader
from atss_core.engine.hooks import default_hooks
from atss_core.engine.inference import evaluate_predictions, predict
from atss_core.engine.precision import check_dtype
from atss_core.engine.trainer import do_train
from atss_core.modeling.detector import build_detection_model
from atss_core.modeling.fusion import optimize_for_inference
from atss_core.solver import make_lr_scheduler, make_optimizer
from atss_core.utils.checkpoint import DetectronCheckpointer
from atss_core.utils.comm import all_gather, get_rank
from atss_core.utils.seed import resolve_seed, seed_everything
from atss_core.weights.sources import CATALOG_PREFIX, TORCHVISION_PREFIX


def train(cfg, local_rank, distributed, logger, log_period=20, progress=False, history=None, tracker=None):
    """Builds the model, resumes from OUTPUT_DIR or loads MODEL.WEIGHT, and trains to
    SOLVER.MAX_ITER with the default hooks (``progress``/``history``/``tracker``: see
    default_hooks). Returns the model (DDP-wrapped when distributed). The run's seed (SEED, or
    the random one it drew) is saved in its checkpoints and a resumed run continues with it."""
    seed = resolve_seed(cfg.SEED)
    seed_everything(seed)
    model = build_detection_model(cfg)
    device = torch.device(cfg.MODEL.DEVICE)
    model.to(device)
    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    checkpointer = DetectronCheckpointer(cfg, model, optimizer, scheduler, cfg.OUTPUT_DIR,
                                         save_to_disk=get_rank() == 0, logger=logger)
    checkpointer.remove_stale_temporaries()
    arguments = {"iteration": 0, "seed": seed}
    arguments.update({k: v for k, v in checkpointer.load(cfg.MODEL.WEIGHT).items()
                      if k in ("iteration", "seed", "grad_scaler")})
    if arguments["seed"] != seed:
        logger.info("resumed run: continuing with its seed %d (SEED is %d)", arguments["seed"], cfg.SEED)
    logger.info("seed %d", arguments["seed"])
    if distributed:
        check_same_start(arguments)
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None, broadcast_buffers=False)
    if arguments["iteration"] >= cfg.SOLVER.MAX_ITER:
        logger.info("already trained to iteration %d (SOLVER.MAX_ITER %d)", arguments["iteration"],
                    cfg.SOLVER.MAX_ITER)
        return model
    data_loader = make_data_loader(cfg, is_train=True, start_iter=arguments["iteration"], seed=arguments["seed"])
    hooks = default_hooks(checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD, logger, log_period, progress, history, tracker)
    do_train(model, data_loader, optimizer, scheduler, checkpointer, device, cfg.SOLVER.CHECKPOINT_PERIOD, arguments,
             hooks=hooks, use_amp=check_dtype(cfg))
    return model


def check_same_start(arguments):
    """Every process must resume from the same checkpoint: on a shared file system with stale
    caches a restarted node can read an older last_checkpoint, and processes at different
    iterations would pair up the wrong collectives."""
    starts = all_gather((arguments["iteration"], arguments["seed"]), "comparing the resumed iterations")
    if len(set(starts)) > 1:
        raise RuntimeError("the processes resumed from different checkpoints ((iteration, seed) by rank: {}): "
                           "OUTPUT_DIR/last_checkpoint must read the same on every node (a shared file system "
                           "whose caches lag?)".format(", ".join("{}: {}".format(rank, start)
                                                                  for rank, start in enumerate(starts))))


def is_backbone_only_weight(weight):
    """The configs' ImageNet backbone weights (catalog://, torchvision:// or a Detectron .pkl),
    not a detector."""
    return weight.startswith((CATALOG_PREFIX, TORCHVISION_PREFIX)) or weight.endswith(".pkl")


def load_model_for_evaluation(cfg, logger=None):
    """The detector with the weights to evaluate: MODEL.WEIGHT when it names a checkpoint;
    OUTPUT_DIR's last checkpoint when MODEL.WEIGHT is empty or the ImageNet backbone. Folded
    for inference when TEST.OPTIMIZE_FOR_INFERENCE."""
    model = build_detection_model(cfg)
    device = torch.device(cfg.MODEL.DEVICE)
    model.to(device)
    checkpointer = DetectronCheckpointer(cfg, model, save_dir=cfg.OUTPUT_DIR, logger=logger)
    backbone_only = is_backbone_only_weight(cfg.MODEL.WEIGHT)
    if cfg.MODEL.WEIGHT and not backbone_only:
        checkpointer.load(cfg.MODEL.WEIGHT, use_latest=False, strict=True)
    elif checkpointer.has_checkpoint():
        checkpointer.load()
    elif backbone_only:
        raise ValueError("MODEL.WEIGHT {} holds ImageNet backbone weights only, not a detector: set MODEL.WEIGHT to "
                         "a trained checkpoint (.pth) or OUTPUT_DIR to a training run".format(cfg.MODEL.WEIGHT))
    else:
        raise ValueError("no weights to evaluate: set MODEL.WEIGHT or point OUTPUT_DIR at a training run")
    if cfg.TEST.OPTIMIZE_FOR_INFERENCE:
        optimize_for_inference(model, channels_last=device.type == "cpu")
    return model


def inference_folder(cfg, dataset_name):
    """OUTPUT_DIR/inference/<dataset name> (None without OUTPUT_DIR)."""
    if not cfg.OUTPUT_DIR:
        return None
    return os.path.join(cfg.OUTPUT_DIR, "inference", dataset_folder_name(dataset_name))


def run_test(cfg, model, distributed=False, logger=None, tracker=None, iteration=0):
    """Evaluates ``model`` on every DATASETS.TEST entry; returns {dataset name: report}.
    ``tracker`` (TensorBoard) receives each report at step ``iteration``."""
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        model = model.module  # inference needs no gradient synchronisation
    device = torch.device(cfg.MODEL.DEVICE)
    bbox_aug_cfg = cfg if cfg.TEST.BBOX_AUG.ENABLED else None
    gathered = []
    for name, loader in zip(cfg.DATASETS.TEST, make_data_loader(cfg, is_train=False)):
        predictions, timings = predict(model, loader, name, device, logger=logger, use_amp=check_dtype(cfg),
                                       bbox_aug_cfg=bbox_aug_cfg)
        gathered.append((name, loader.dataset, predictions, timings))
    # the main process evaluates once every dataset is gathered; no collective follows (one would
    # time out during an evaluation longer than DIST_TIMEOUT): the others wait for it by polling
    # its store at the end of the command (launch.process_group_closed_at_exit)
    reports = {}
    for name, dataset, predictions, timings in gathered:
        reports[name] = None if predictions is None else evaluate_predictions(
            dataset, name, predictions, timings, inference_folder(cfg, name), logger=logger,
            coco_backend=cfg.TEST.COCO_EVAL_BACKEND, tracker=tracker, iteration=iteration)
    return reports
