"""Runs the detector over a test loader, gathers predictions from all processes in dataset
order and evaluates them."""
import logging
import os
import time

import torch
from tqdm import tqdm

from atss_core.data.datasets.evaluation import evaluate
from atss_core.data.datasets.evaluation.coco.coco_eval import (COCO_MAX_DETS, check_box_evaluation,
                                                               check_expected_results)
from atss_core.engine.bbox_aug import im_detect_bbox_aug
from atss_core.engine.precision import autocast_context
from atss_core.engine.tiling import im_detect_tiled
from atss_core.utils.comm import all_gather, is_main_process, synchronize
from atss_core.utils.logger import progress_bar_wanted


def compute_on_dataset(model, data_loader, device, timer=None, show_progress=True, use_amp=False, bbox_aug_cfg=None,
                       timings=None, tile_cfg=None):
    """{dataset index: BoxList on the CPU}. With ``bbox_aug_cfg`` (a config with
    TEST.BBOX_AUG.ENABLED) the loader yields raw images and the test-time augmentation runs;
    with ``tile_cfg`` (TEST.TILE.ENABLED) it yields raw images and the tiled inference runs.
    ``timings``, a dict, receives the seconds spent waiting for data and in the model;
    ``timer`` (the official argument: anything with tic() and toc()) times each model call."""
    model.eval()
    results = {}
    cpu = torch.device("cpu")
    data_seconds = model_seconds = 0.0
    start = time.perf_counter()
    bar = progress_bar_wanted(show_progress and is_main_process())
    # without a bar (a redirected log), a plain line about every tenth of the batches
    line_every = max(len(data_loader) // 10, 1) if show_progress and is_main_process() and not bar else 0
    for batch, (images, _, indices) in enumerate(tqdm(data_loader, disable=not bar, desc="inference", unit="batch"),
                                                 1):
        loaded = time.perf_counter()
        if timer is not None:
            timer.tic()
        if bbox_aug_cfg is not None:
            outputs = im_detect_bbox_aug(model, images, device, bbox_aug_cfg, use_amp=use_amp)
        elif tile_cfg is not None:
            outputs = im_detect_tiled(model, images, device, tile_cfg, use_amp=use_amp)
        else:
            with torch.no_grad(), autocast_context(use_amp):
                outputs = model(images.to(device))
        if timer is not None:
            timer.toc()
        results.update({index: output.to(cpu) for index, output in zip(indices, outputs)})
        data_seconds += loaded - start
        start = time.perf_counter()
        model_seconds += start - loaded
        if line_every and (batch % line_every == 0 or batch == len(data_loader)):
            logging.getLogger("atss_core.inference").info("inference: %d of %d batches done", batch, len(data_loader))
    if timings is not None:
        timings.update(data=data_seconds, model=model_seconds)
    return results


def accumulate_predictions(predictions_per_process, logger):
    gathered = all_gather(predictions_per_process, "gathering the evaluation predictions")
    if not is_main_process():
        return None
    predictions = {}
    for part in gathered:
        predictions.update(part)
    indices = sorted(predictions)
    if indices != list(range(len(indices))):
        logger.warning("the gathered predictions do not cover a contiguous set of images: some are missing")
    return [predictions[i] for i in indices]


def predict(model, data_loader, dataset_name, device, logger=None, use_amp=False, bbox_aug_cfg=None, tile_cfg=None):
    """Every process: runs the model over its share of the loader and gathers the predictions.
    Returns (predictions in dataset order, timings) on the main process, (None, timings)
    elsewhere. ``bbox_aug_cfg``, ``tile_cfg``: see :func:`compute_on_dataset`."""
    logger = logger or logging.getLogger("atss_core.inference")
    dataset = data_loader.dataset
    logger.info("evaluating on %s (%d images)", dataset_name, len(dataset))
    start = time.time()
    timings = {}
    predictions = compute_on_dataset(model, data_loader, device, use_amp=use_amp, bbox_aug_cfg=bbox_aug_cfg,
                                     timings=timings, tile_cfg=tile_cfg)
    synchronize("the end of inference on every process")
    elapsed = time.time() - start
    predictions = accumulate_predictions(predictions, logger)
    timings.update(total_inference=elapsed, images=len(dataset))
    if predictions is not None:
        images = max(len(dataset), 1)
        logger.info("inference: %.1f s (%.3f s / image, %.2f images/s); this process waited %.1f s for data and "
                    "spent %.1f s in the model", elapsed, elapsed / images, images / max(elapsed, 1e-9),
                    timings["data"], timings["model"])
    return predictions, timings


def check_class_names(class_names, dataset, dataset_name, logger):
    """Warns when the model's class names (what its checkpoint records) differ from the
    dataset's in label order: the per-class AP would then pair the model's classes with other
    classes' ground truth. Returns whether they agree (None when either side has none)."""
    theirs = dataset.class_names() if hasattr(dataset, "class_names") else None
    if not class_names or not theirs:
        return None
    if list(class_names) == list(theirs):
        return True
    differing = ["label {}: model {!r}, dataset {!r}".format(k, a, b)
                 for k, (a, b) in enumerate(zip(class_names, theirs)) if a != b]
    if len(class_names) != len(theirs):
        differing.append("{} classes in the model, {} in the dataset".format(len(class_names) - 1, len(theirs) - 1))
    logger.warning("the model's class names differ from those of %s (%s%s): its per-class AP pairs them by label",
                   dataset_name, "; ".join(differing[:5]), "; ..." if len(differing) > 5 else "")
    return False


def evaluate_predictions(dataset, dataset_name, predictions, timings, output_folder=None, logger=None,
                         coco_backend="pycocotools", tracker=None, iteration=0, class_names=None,
                         coco_max_dets=COCO_MAX_DETS):
    """The main process: writes predictions.pth, bbox.json and the metrics to ``output_folder``
    and returns the report; ``tracker`` (TensorBoard) receives it at step ``iteration``.
    ``class_names``: the model's (label order), checked against the dataset's and used for the
    TensorBoard pictures."""
    logger = logger or logging.getLogger("atss_core.inference")
    check_class_names(class_names, dataset, dataset_name, logger)
    if output_folder:
        os.makedirs(output_folder, exist_ok=True)
        torch.save(predictions, os.path.join(output_folder, "predictions.pth"))
    start = time.time()
    report = evaluate(dataset, predictions, output_folder, logger=logger, coco_backend=coco_backend,
                      coco_max_dets=coco_max_dets)
    timings = dict(timings, evaluation=time.time() - start)
    logger.info("evaluation: %.1f s", timings["evaluation"])
    report["timing"] = timings
    if tracker is not None:
        tracker.log_evaluation(dataset_name, report, iteration, dataset, predictions, class_names=class_names)
    return report


def inference(model, data_loader, dataset_name, iou_types=("bbox",), box_only=False, device=None, expected_results=(),
              expected_results_sigma_tol=4, output_folder=None, logger=None, use_amp=False, bbox_aug_cfg=None,
              coco_backend="pycocotools", tracker=None, iteration=0, coco_max_dets=COCO_MAX_DETS):
    """:func:`predict`, then :func:`evaluate_predictions` on the main process: its report there,
    None elsewhere. The official parameters: ``iou_types`` ("bbox" only) and ``box_only``
    (False: an ATSS model makes no proposals) are checked; ``device`` None is the model's;
    ``expected_results`` [(task, metric, (mean, std))] are checked within
    ``expected_results_sigma_tol`` std and logged (COCO)."""
    check_box_evaluation(box_only, iou_types)
    if device is None:
        device = next(model.parameters()).device
    predictions, timings = predict(model, data_loader, dataset_name, device, logger=logger, use_amp=use_amp,
                                   bbox_aug_cfg=bbox_aug_cfg)
    if predictions is None:
        return None
    report = evaluate_predictions(data_loader.dataset, dataset_name, predictions, timings, output_folder,
                                  logger=logger, coco_backend=coco_backend, tracker=tracker, iteration=iteration,
                                  coco_max_dets=coco_max_dets)
    if expected_results and "bbox" in report:
        check_expected_results(report, expected_results, expected_results_sigma_tol)
    return report
