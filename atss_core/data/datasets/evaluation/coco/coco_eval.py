"""COCO box evaluation: AP, AP50, AP75, APs, APm, APl and a per-class AP table, computed by
pycocotools (the default, as the official code) or by faster-coco-eval (TEST.COCO_EVAL_BACKEND:
the same numbers, several times faster on large detection sets). TEST.COCO_MAX_DETS sets the
detections per image COCOeval keeps (COCO's 1, 10, 100 by default); past 100 the summary is
computed here from the accumulated precision and recall, the same way for both backends
(pycocotools' own summary assumes 100 for its first AP, cocoapi #584)."""
import contextlib
import io
import json
import logging
import os

import numpy as np
import torch

from atss_core.structures.bounding_box import BoxList
from atss_core.structures.boxlist_ops import boxlist_iou

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
BACKENDS = ("pycocotools", "faster-coco-eval")
COCO_MAX_DETS = (1, 10, 100)
# COCO's object-size ranges (areas) and the finer ones of the official proposal evaluation
AREA_RANGES = {"all": (0, 1e10), "small": (0, 32 ** 2), "medium": (32 ** 2, 96 ** 2), "large": (96 ** 2, 1e10),
               "96-128": (96 ** 2, 128 ** 2), "128-256": (128 ** 2, 256 ** 2), "256-512": (256 ** 2, 512 ** 2),
               "512-inf": (512 ** 2, 1e10)}


def check_backend(backend):
    if backend not in BACKENDS:
        raise ValueError("TEST.COCO_EVAL_BACKEND must be one of {}, got {!r}".format(", ".join(BACKENDS), backend))


def check_max_dets(max_dets):
    """TEST.COCO_MAX_DETS: three increasing positive counts (COCOeval's AR@ columns); a tuple."""
    values = tuple(max_dets)
    if len(values) != 3 or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values) \
            or list(values) != sorted(set(values)):
        raise ValueError("TEST.COCO_MAX_DETS must be three increasing positive integers such as (1, 10, 100), "
                         "got {!r}".format(max_dets))
    return values


def coco_evaluator(backend, coco_gt, results, max_dets=COCO_MAX_DETS):
    """A COCOeval-like object (evaluate / accumulate / summarize / stats / eval) on the boxes,
    keeping ``max_dets`` detections per image."""
    if backend == "pycocotools":
        from pycocotools.cocoeval import COCOeval

        evaluator = COCOeval(coco_gt, coco_gt.loadRes(results), "bbox")
    else:
        check_backend(backend)
        from faster_coco_eval import COCO, COCOeval_faster

        gt = COCO(coco_gt.dataset)
        evaluator = COCOeval_faster(gt, gt.loadRes(results), "bbox")
    evaluator.params.maxDets = list(check_max_dets(max_dets))
    return evaluator


def metric_names(max_dets=COCO_MAX_DETS):
    """The 12 names of COCO's summary, the AR columns named after ``max_dets``."""
    small, medium, large = max_dets
    return list(METRICS) + ["AR@{}".format(small), "AR@{}".format(medium), "AR@{}".format(large),
                            "ARs@{}".format(large), "ARm@{}".format(large), "ARl@{}".format(large)]


# (AP or AR, IoU threshold or None for 0.5:0.95, area range, index into maxDets) of the 12 numbers
_SUMMARY = [(True, None, "all", 2), (True, 0.5, "all", 2), (True, 0.75, "all", 2), (True, None, "small", 2),
            (True, None, "medium", 2), (True, None, "large", 2), (False, None, "all", 0), (False, None, "all", 1),
            (False, None, "all", 2), (False, None, "small", 2), (False, None, "medium", 2), (False, None, "large", 2)]


def summarize_boxes(coco_eval):
    """(12 numbers, their printed lines) of COCO's box summary from an accumulated evaluator,
    every number at its own maxDets entry (the mean of the valid precision / recall cells, -1
    where there are none)."""
    params = coco_eval.params
    stats, lines = [], []
    for is_ap, iou, area, which in _SUMMARY:
        area_index = list(params.areaRngLbl).index(area)
        values = coco_eval.eval["precision" if is_ap else "recall"]
        if iou is not None:
            values = values[np.isclose(params.iouThrs, iou)]
        values = values[..., area_index, which]
        valid = values[values > -1]
        stats.append(float(np.mean(valid)) if valid.size else -1.0)
        lines.append(" Average {:<9} @[ IoU={:<9} | area={:>6s} | maxDets={:>3d} ] = {:0.3f}".format(
            "Precision" if is_ap else "Recall", "0.50:0.95" if iou is None else "{:0.2f}".format(iou), area,
            params.maxDets[which], stats[-1]))
    return np.array(stats), "\n".join(lines)


def prepare_for_coco_detection(predictions, dataset):
    """COCO result records; each prediction is resized back to its original image first."""
    results = []
    for index, prediction in enumerate(predictions):
        if prediction is None or len(prediction) == 0:
            continue
        info = dataset.get_img_info(index)
        prediction = prediction.resize((info["width"], info["height"])).convert("xywh")
        boxes = prediction.bbox.tolist()
        scores = prediction.get_field("scores").tolist()
        labels = prediction.get_field("labels").tolist()
        for box, score, label in zip(boxes, scores, labels):
            results.append({"image_id": info["id"], "category_id": dataset.contiguous_category_id_to_json_id[label],
                            "bbox": box, "score": score})
    return results


def per_class_ap(coco_eval):
    """{category name: AP over IoU 0.5:0.95, all areas, the largest maxDets} (nan if no gt)."""
    precision = coco_eval.eval["precision"]  # [T, R, K, A, M]
    names = {c["id"]: c["name"] for c in coco_eval.cocoGt.loadCats(coco_eval.params.catIds)}
    table = {}
    for k, cat_id in enumerate(coco_eval.params.catIds):
        p = precision[:, :, k, 0, -1]
        p = p[p > -1]
        table[names[cat_id]] = float(np.mean(p)) if p.size else float("nan")
    return table


def check_box_evaluation(box_only, iou_types):
    """An ATSS model gives detections: box_only (RPN proposals) and mask/keypoint metrics do not apply."""
    if box_only:
        raise ValueError("box_only evaluates RPN proposals, which an ATSS model does not make")
    unsupported = [t for t in iou_types if t != "bbox"]
    if unsupported:
        raise ValueError("iou_types {} are not evaluated: an ATSS model gives boxes ('bbox') only".format(unsupported))


class COCOResults:
    """The official summary holder: ``results[iou_type][metric]`` (-1 until ``update`` with an
    evaluated COCOeval of that iou type)."""

    METRICS = {"bbox": list(METRICS), "segm": list(METRICS),
               "box_proposal": ["AR@100", "ARs@100", "ARm@100", "ARl@100", "AR@1000", "ARs@1000", "ARm@1000",
                                "ARl@1000"],
               "keypoints": ["AP", "AP50", "AP75", "APm", "APl"]}

    def __init__(self, *iou_types):
        unknown = [t for t in iou_types if t not in self.METRICS]
        if unknown:
            raise ValueError("unknown iou types {}; known: {}".format(unknown, ", ".join(self.METRICS)))
        self.results = {t: {metric: -1 for metric in self.METRICS[t]} for t in iou_types}

    def update(self, coco_eval):
        if coco_eval is None:
            return
        table = self.results[coco_eval.params.iouType]
        for metric, value in zip(self.METRICS[coco_eval.params.iouType], coco_eval.stats):
            table[metric] = float(value)

    def __repr__(self):
        return repr(self.results)


def check_expected_results(results, expected_results, sigma_tol):
    """Logs, for each (task, metric, (mean, std)) of ``expected_results``
    (TEST.EXPECTED_RESULTS), whether the measured value lies strictly within ``sigma_tol`` std
    of the mean, and returns whether all do. ``results``: a COCOResults or a report of
    do_coco_evaluation ({"bbox": {metric: value}})."""
    logger = logging.getLogger("atss_core.inference")
    table = getattr(results, "results", results)
    all_ok = True
    for task, metric, (mean, std) in expected_results:
        actual = table[task][metric]
        lo, hi = mean - sigma_tol * std, mean + sigma_tol * std
        ok = lo < actual < hi
        all_ok &= ok
        line = "expected {} {} in ({:.4f}, {:.4f}) (mean {:.4f} +- {} x std {:.4f}): measured {:.4f}".format(
            task, metric, lo, hi, mean, sigma_tol, std, actual)
        if ok:
            logger.info("within range: %s", line)
        else:
            logger.error("OUT OF RANGE: %s", line)
    return all_ok


def compute_thresholds_for_classes(coco_eval):
    """Per category, the best F-measure over the precision-recall curve (IoU 0.5, all areas, the
    largest maxDets) and the score at which it is reached: thresholds for showing detections
    (the official demo's per-class thresholds). Logs them and returns (f_measures, scores)."""
    precision = coco_eval.eval["precision"][0, :, :, 0, -1]  # [recall points, categories]
    scores = coco_eval.eval["scores"][0, :, :, 0, -1]
    recall = np.linspace(0, 1, num=precision.shape[0])[:, None]
    f_measure = 2 * precision * recall / np.maximum(precision + recall, 1e-6)
    best = f_measure.argmax(axis=0)
    categories = np.arange(f_measure.shape[1])
    f_best, thresholds = f_measure[best, categories], scores[best, categories]
    logger = logging.getLogger("atss_core.inference")
    logger.info("best F-measure per class: %s", [round(float(v), 4) for v in f_best])
    logger.info("score threshold of that F-measure per class (for the demos): %s",
                [round(float(v), 4) for v in thresholds])
    return f_best, thresholds


def evaluate_box_proposals(predictions, dataset, thresholds=None, area="all", limit=None):
    """Recall of the boxes (ranked by "objectness", else "scores") against the non-crowd gts of
    ``area``: each gt is matched greedily to the box of highest IoU left (legacy +1 IoU), and
    the recall is taken at IoU ``thresholds`` (0.5:0.05:0.95 by default); ``limit`` keeps the
    first boxes of each image. Returns {"ar", "recalls", "thresholds", "gt_overlaps", "num_pos"}."""
    if area not in AREA_RANGES:
        raise ValueError("unknown area range {!r}; known: {}".format(area, ", ".join(AREA_RANGES)))
    lo, hi = AREA_RANGES[area]
    overlaps_per_gt, num_pos = [], 0
    for index, prediction in enumerate(predictions):
        info = dataset.get_img_info(index)
        prediction = prediction.resize((info["width"], info["height"]))
        ranking = "objectness" if prediction.has_field("objectness") else "scores"
        prediction = prediction[prediction.get_field(ranking).sort(descending=True)[1]]
        annotations = [a for a in dataset.coco.loadAnns(dataset.coco.getAnnIds(imgIds=info["id"])) if not a["iscrowd"]]
        areas = torch.as_tensor([a["area"] for a in annotations], dtype=torch.float32)
        gt = BoxList(torch.as_tensor([a["bbox"] for a in annotations], dtype=torch.float32).reshape(-1, 4),
                     (info["width"], info["height"]), mode="xywh").convert("xyxy")
        gt = gt[(areas >= lo) & (areas <= hi)]
        num_pos += len(gt)
        if len(gt) == 0 or len(prediction) == 0:
            continue
        if limit is not None:
            prediction = prediction[:limit]
        overlaps = boxlist_iou(prediction, gt)
        matched = torch.zeros(len(gt))
        for k in range(min(len(prediction), len(gt))):
            best_per_gt, best_box = overlaps.max(dim=0)
            value, gt_index = best_per_gt.max(dim=0)
            matched[k] = value
            overlaps[best_box[gt_index], :] = -1
            overlaps[:, gt_index] = -1
        overlaps_per_gt.append(matched)
    gt_overlaps = torch.sort(torch.cat(overlaps_per_gt))[0] if overlaps_per_gt else torch.zeros(0)
    if thresholds is None:
        thresholds = torch.arange(0.5, 0.95 + 1e-5, 0.05, dtype=torch.float32)
    recalls = torch.stack([(gt_overlaps >= t).float().sum() / max(float(num_pos), 1.0) for t in thresholds])
    return {"ar": recalls.mean(), "recalls": recalls, "thresholds": thresholds, "gt_overlaps": gt_overlaps,
            "num_pos": num_pos}


def evaluate_predictions_on_coco(coco_gt, coco_results, json_result_file, iou_type="bbox", backend="pycocotools",
                                 max_dets=COCO_MAX_DETS):
    """Writes ``coco_results`` (result records) to ``json_result_file`` and returns the
    evaluated COCOeval (evaluate, accumulate and summarize run)."""
    if iou_type != "bbox":
        raise ValueError("iou_type {!r} is not evaluated: an ATSS model gives boxes ('bbox') only".format(iou_type))
    with open(json_result_file, "w") as f:
        json.dump(coco_results, f)
    coco_eval = coco_evaluator(backend, coco_gt, coco_results, max_dets)
    coco_eval.evaluate()
    coco_eval.accumulate()
    _summarize(coco_eval, max_dets)
    compute_thresholds_for_classes(coco_eval)
    return coco_eval


def _summarize(coco_eval, max_dets):
    """The evaluator's own summary (printed) for COCO's maxDets, else ours; sets ``stats``."""
    if tuple(max_dets) == COCO_MAX_DETS:
        coco_eval.summarize()
        return
    coco_eval.stats, lines = summarize_boxes(coco_eval)
    print(lines)


def do_coco_evaluation(dataset, predictions, box_only=False, output_folder=None, iou_types=("bbox",),
                       expected_results=(), expected_results_sigma_tol=4, logger=None, backend="pycocotools",
                       max_dets=COCO_MAX_DETS):
    """Writes bbox.json and coco_metrics.json to ``output_folder`` (when given) and returns
    {"bbox": {metric: value}, "per_class": {name: AP}} (and "bbox_recall": {AR@...: value} past
    COCO's maxDets); ``expected_results`` are checked (and logged) as officially."""
    check_backend(backend)
    max_dets = check_max_dets(max_dets)
    check_box_evaluation(box_only, iou_types)
    logger = logger or logging.getLogger("atss_core.inference")
    results = prepare_for_coco_detection(predictions, dataset)
    if output_folder:
        os.makedirs(output_folder, exist_ok=True)
        with open(os.path.join(output_folder, "bbox.json"), "w") as f:
            json.dump(results, f)
    metrics = {name: 0.0 for name in METRICS}
    recall = {name: 0.0 for name in metric_names(max_dets)[len(METRICS):]}
    table = {}
    if not results:
        logger.warning("no detections at all: every AP is 0")
    else:
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            coco_eval = coco_evaluator(backend, dataset.coco, results, max_dets)
            coco_eval.params.imgIds = sorted(dataset.ids)
            coco_eval.evaluate()
            coco_eval.accumulate()
            _summarize(coco_eval, max_dets)
        logger.info("COCO bbox evaluation (%s):\n%s", backend, stdout.getvalue().rstrip())
        metrics = {name: float(v) for name, v in zip(METRICS, coco_eval.stats[:6])}
        recall = {name: float(v) for name, v in zip(metric_names(max_dets)[len(METRICS):], coco_eval.stats[6:])}
        table = per_class_ap(coco_eval)
        if "scores" in coco_eval.eval:
            compute_thresholds_for_classes(coco_eval)
        logger.info("per-class AP:\n%s", "\n".join("  {:<24} {:.4f}".format(k, v) for k, v in table.items()))
    report = {"bbox": metrics, "per_class": table}
    if max_dets != COCO_MAX_DETS:
        report["bbox_recall"] = recall
    if output_folder:
        with open(os.path.join(output_folder, "coco_metrics.json"), "w") as f:
            json.dump(report, f, indent=2)
    if expected_results:
        check_expected_results(report, expected_results, expected_results_sigma_tol)
    return report
