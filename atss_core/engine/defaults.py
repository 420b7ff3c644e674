"""What the commands do, as functions: train a model from a config (with the default hooks),
evaluate it on DATASETS.TEST, and load the weights to evaluate. tools/train_net.py,
tools/test_net.py and tools/quickstart.py call these after engine/launch.py's start-up."""
import logging
import os

import torch

from atss_core.config.paths_catalog import dataset_folder_name
from atss_core.data.build import make_data_loader
from atss_core.data.transforms.build import describe_augmentation
from atss_core.engine.ema import ModelEMA
from atss_core.engine.hooks import default_hooks
from atss_core.engine.inference import evaluate_predictions, predict
from atss_core.engine.precision import check_dtype
from atss_core.engine.trainer import do_train
from atss_core.engine.validation import BestMetric, PeriodicEvaluation, validation_datasets
from atss_core.modeling.detector import build_detection_model
from atss_core.modeling.fusion import optimize_for_inference
from atss_core.solver import make_gradient_clipper, make_lr_scheduler, make_optimizer
from atss_core.utils.checkpoint import DetectronCheckpointer, ema_weights_of
from atss_core.utils.comm import all_gather, get_rank, unwrap_model
from atss_core.utils.metrics_file import MetricsFile
from atss_core.utils.seed import resolve_seed, seed_everything
from atss_core.weights.sources import CATALOG_PREFIX, TORCHVISION_PREFIX


RESUMED_STATE = ("iteration", "seed", "grad_scaler", "best", "ema")  # what a resumed run takes from its checkpoint
METRICS_FILE = "metrics.json"


def train(cfg, local_rank, distributed, logger, log_period=20, progress=False, history=None, tracker=None):
    """Builds the model, resumes from OUTPUT_DIR or loads MODEL.WEIGHT, and trains to
    SOLVER.MAX_ITER with the default hooks (``progress``/``history``/``tracker``: see
    default_hooks), evaluating every SOLVER.TEST_PERIOD iterations when set. Returns the model
    (DDP-wrapped when distributed; holding the averaged weights when MODEL.EMA is on). The
    run's seed (SEED, or the random one it drew) is saved in its checkpoints and a resumed run
    continues with it."""
    seed = resolve_seed(cfg.SEED)
    seed_everything(seed)
    model = build_detection_model(cfg)
    device = torch.device(cfg.MODEL.DEVICE)
    model.to(device)
    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    clip_gradients = make_gradient_clipper(cfg)
    checkpointer = DetectronCheckpointer(cfg, model, optimizer, scheduler, cfg.OUTPUT_DIR,
                                         save_to_disk=get_rank() == 0, logger=logger)
    checkpointer.remove_stale_temporaries()
    arguments = {"iteration": 0, "seed": seed}
    arguments.update({k: v for k, v in checkpointer.load(cfg.MODEL.WEIGHT).items() if k in RESUMED_STATE})
    if arguments["seed"] != seed:
        logger.info("resumed run: continuing with its seed %d (SEED is %d)", arguments["seed"], cfg.SEED)
    logger.info("seed %d", arguments["seed"])
    logger.info("training recipe:\n%s", describe_recipe(cfg))
    ema = make_ema(cfg, model, arguments.pop("ema", None), logger)
    if distributed:
        check_same_start(arguments)
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if device.type == "cuda" else None, broadcast_buffers=False)
    if arguments["iteration"] >= cfg.SOLVER.MAX_ITER:
        logger.info("already trained to iteration %d (SOLVER.MAX_ITER %d)", arguments["iteration"],
                    cfg.SOLVER.MAX_ITER)
        return _with_final_weights(model, ema)
    data_loader = make_data_loader(cfg, is_train=True, start_iter=arguments["iteration"], seed=arguments["seed"])
    class_names = training_class_names(data_loader.dataset, logger)
    if class_names:
        arguments["class_names"] = class_names  # every checkpoint records them (the demos read them)
    unwrap_model(model).class_names = class_names  # evaluations compare them with the validation data's
    metrics_file = MetricsFile(os.path.join(cfg.OUTPUT_DIR, METRICS_FILE), logger) \
        if cfg.OUTPUT_DIR and get_rank() == 0 else None
    evaluation = None
    if cfg.SOLVER.TEST_PERIOD > 0:
        evaluation = PeriodicEvaluation(cfg.SOLVER.TEST_PERIOD, validator(cfg, logger, tracker),
                                        BestMetric(cfg.SOLVER.BEST_METRIC, validation_datasets(cfg)), checkpointer,
                                        metrics_file, ema, class_names, logger)
    hooks = default_hooks(checkpointer, cfg.SOLVER.CHECKPOINT_PERIOD, logger, log_period, progress, history, tracker,
                          ema=ema, metrics_file=metrics_file, evaluation=evaluation)
    do_train(model, data_loader, optimizer, scheduler, checkpointer, device, cfg.SOLVER.CHECKPOINT_PERIOD, arguments,
             hooks=hooks, use_amp=check_dtype(cfg), clip_gradients=clip_gradients,
             accumulate_steps=cfg.SOLVER.ACCUMULATE_STEPS)
    return _with_final_weights(model, ema)


def make_ema(cfg, model, saved_state, logger):
    """The moving average of MODEL.EMA (None when off), continued from a resumed checkpoint's."""
    if not cfg.MODEL.EMA.ENABLED:
        return None
    ema = ModelEMA(model, cfg.MODEL.EMA.DECAY, cfg.MODEL.EMA.WARMUP_ITERS)
    if saved_state is not None:
        ema.load_state_dict(saved_state)
        logger.info("EMA: continuing the average of the checkpoint (%d updates)", ema.updates)
    return ema



def _with_final_weights(model, ema):
    """After training, what is evaluated: the averaged weights when MODEL.EMA is on."""
    if ema is not None:
        unwrap_model(model).load_state_dict(ema.weights)
    return model


def training_class_names(dataset, logger):
    names = dataset.class_names() if hasattr(dataset, "class_names") else None
    if names is None:
        logger.warning("the training datasets do not agree on their class names: checkpoints record none")
    return names


def describe_recipe(cfg):
    """The start-up block: what this run optimises and how it is validated."""
    solver = cfg.SOLVER
    if solver.OPTIMIZER == "AdamW":
        optimiser = "AdamW (betas {}, weight decay {})".format(tuple(solver.BETAS), solver.WEIGHT_DECAY)
    else:
        optimiser = "{} (momentum {}, weight decay {})".format(solver.OPTIMIZER, solver.MOMENTUM, solver.WEIGHT_DECAY)
    if solver.WEIGHT_DECAY_NORM >= 0:
        optimiser += ", norm weight decay {}".format(solver.WEIGHT_DECAY_NORM)
    if solver.LR_SCHEDULER_NAME == "WarmupCosineLR":
        schedule = "WarmupCosineLR: {} -> {} over {} iterations".format(solver.BASE_LR, solver.BASE_LR_END,
                                                                        solver.MAX_ITER)
    else:
        schedule = "{}: {} x {} at {}".format(solver.LR_SCHEDULER_NAME, solver.BASE_LR, solver.GAMMA,
                                              tuple(solver.STEPS))
    schedule += ", {} warm-up {} iterations from x{:.3g}".format(solver.WARMUP_METHOD, solver.WARMUP_ITERS,
                                                                 solver.WARMUP_FACTOR)
    clip = solver.CLIP_GRADIENTS
    clipping = "off" if not clip.ENABLED else "{} at {}{}".format(
        clip.CLIP_TYPE, clip.CLIP_VALUE, " (L{:g} norm)".format(clip.NORM_TYPE) if clip.CLIP_TYPE == "norm" else "")
    ema = cfg.MODEL.EMA
    averaging = "off" if not ema.ENABLED else "decay {} (warm-up {} updates)".format(ema.DECAY, ema.WARMUP_ITERS)
    steps = solver.ACCUMULATE_STEPS
    accumulation = "off" if steps == 1 else "{} passes of {} images per step".format(
        steps, solver.IMS_PER_BATCH // max(steps, 1))
    if solver.TEST_PERIOD > 0:
        split = "DATASETS.VAL" if cfg.DATASETS.VAL else "DATASETS.TEST (no DATASETS.VAL set)"
        validation = "every {} iterations on {} = {}".format(solver.TEST_PERIOD, split,
                                                             ", ".join(validation_datasets(cfg)))
        best = "{} -> model_best.pth".format(solver.BEST_METRIC)
    else:
        validation, best = "off (SOLVER.TEST_PERIOD 0: DATASETS.TEST after training)", "off"
    loader = cfg.DATALOADER
    data = "{}{}; images without objects {}; crowds {}".format(
        loader.SAMPLER_TRAIN,
        " (threshold {:g})".format(loader.REPEAT_THRESHOLD) if loader.SAMPLER_TRAIN != "TrainingSampler" else "",
        "left out" if loader.FILTER_EMPTY_ANNOTATIONS else "kept", "as ignore regions" if cfg.MODEL.ATSS.IGNORE_CROWD
        else "dropped")
    lines = [("optimiser", optimiser), ("schedule", schedule), ("gradient clipping", clipping), ("EMA", averaging),
             ("accumulation", accumulation), ("validation", validation), ("best metric", best),
             ("augmentation", describe_augmentation(cfg)), ("training data", data)]
    return "\n".join("  {:<18} {}".format(name + ":", text) for name, text in lines)


def validator(cfg, logger, tracker):
    """evaluate(model, iteration) for PeriodicEvaluation: the validation datasets' loaders are
    built once, at the first evaluation; nothing is written but metrics.json and TensorBoard."""
    names = validation_datasets(cfg)
    loaders = []

    def evaluate(model, iteration):
        if not loaders:
            loaders.extend(make_data_loader(cfg, is_train=False, dataset_names=names))
        return evaluate_loaders(cfg, model, list(zip(names, loaders)), logger, tracker, iteration, write_files=False)

    return evaluate


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
        ema = ema_weights_of(checkpointer.load())
        if ema is not None:  # an EMA run: its averaged weights are what it evaluates
            (logger or logging.getLogger("atss_core")).info(
                "the checkpoint holds an exponential moving average of the weights: evaluating the averaged ones")
            model.load_state_dict(ema)
    elif backbone_only:
        raise ValueError("MODEL.WEIGHT {} holds ImageNet backbone weights only, not a detector: set MODEL.WEIGHT to "
                         "a trained checkpoint (.pth) or OUTPUT_DIR to a training run".format(cfg.MODEL.WEIGHT))
    else:
        raise ValueError("no weights to evaluate: set MODEL.WEIGHT or point OUTPUT_DIR at a training run")
    model.class_names = checkpointer.class_names  # the names its file records (checked against the dataset's)
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
    named_loaders = list(zip(cfg.DATASETS.TEST, make_data_loader(cfg, is_train=False)))
    return evaluate_loaders(cfg, model, named_loaders, logger, tracker, iteration)


def evaluate_loaders(cfg, model, named_loaders, logger=None, tracker=None, iteration=0, write_files=True):
    """Every process predicts on each (name, loader); the main process evaluates them and gets
    {name: report}, the others {name: None}. ``write_files``: predictions, bbox.json and the
    metrics in OUTPUT_DIR/inference/<name>."""
    model = unwrap_model(model)  # inference needs no gradient synchronisation
    device = torch.device(cfg.MODEL.DEVICE)
    bbox_aug_cfg = cfg if cfg.TEST.BBOX_AUG.ENABLED else None
    gathered = []
    for name, loader in named_loaders:
        predictions, timings = predict(model, loader, name, device, logger=logger, use_amp=check_dtype(cfg),
                                       bbox_aug_cfg=bbox_aug_cfg, tile_cfg=cfg if cfg.TEST.TILE.ENABLED else None)
        gathered.append((name, loader.dataset, predictions, timings))
    # the main process evaluates once every dataset is gathered; no collective follows (one would
    # time out during an evaluation longer than DIST_TIMEOUT): the others wait for it by polling
    # its store at the end of the command (launch.process_group_closed_at_exit)
    reports = {}
    for name, dataset, predictions, timings in gathered:
        reports[name] = None if predictions is None else evaluate_predictions(
            dataset, name, predictions, timings, inference_folder(cfg, name) if write_files else None, logger=logger,
            coco_backend=cfg.TEST.COCO_EVAL_BACKEND, coco_max_dets=cfg.TEST.COCO_MAX_DETS, tracker=tracker,
            iteration=iteration,
            class_names=getattr(model, "class_names", None))
    return reports
