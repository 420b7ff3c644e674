"""COCO box evaluation: AP, AP50, AP75, APs, APm, APl and a per-class AP table, computed by
pycocotools (the default, as the official code) or by faster-coco-eval (TEST.COCO_EVAL_BACKEND:
the same numbers, several times faster on large detection sets)."""
import contextlib
import io
import json
import logging
import os

import numpy as np

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
BACKENDS = ("pycocotools", "faster-coco-eval")


def check_backend(backend):
    if backend not in BACKENDS:
        raise ValueError("TEST.COCO_EVAL_BACKEND must be one of {}, got {!r}".format(", ".join(BACKENDS), backend))


def coco_evaluator(backend, coco_gt, results):
    """A COCOeval-like object (evaluate / accumulate / summarize / stats / eval) on the boxes."""
    if backend == "pycocotools":
        from pycocotools.cocoeval import COCOeval

        return COCOeval(coco_gt, coco_gt.loadRes(results), "bbox")
    check_backend(backend)
    from faster_coco_eval import COCO, COCOeval_faster

    gt = COCO(coco_gt.dataset)
    return COCOeval_faster(gt, gt.loadRes(results), "bbox")


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
    """{category name: AP over IoU 0.5:0.95, all areas, 100 detections} (nan if no gt)."""
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


def check_expected_results(results, expected_results, sigma_tol):
    """Logs, for each (task, metric, mean, std) of ``expected_results`` (TEST.EXPECTED_RESULTS),
    whether the measured value lies within ``sigma_tol`` std of the mean; returns whether all do.
    ``results``: a report of do_coco_evaluation ({"bbox": {metric: value}})."""
    logger = logging.getLogger("atss_core.inference")
    table = getattr(results, "results", results)
    all_ok = True
    for task, metric, mean, std in expected_results:
        actual = table[task][metric]
        lo, hi = mean - sigma_tol * std, mean + sigma_tol * std
        ok = lo < actual < hi
        all_ok &= ok
        message = "{} > {} sanity check (actual vs. expected): {:.3f} vs. mean={:.4f}, std={:.4}, range=({:.4f}, " \
                  "{:.4f})".format(task, metric, actual, mean, std, lo, hi)
        (logger.info if ok else logger.error)(("PASS: " if ok else "FAIL: ") + message)
    return all_ok


def evaluate_predictions_on_coco(coco_gt, coco_results, json_result_file, iou_type="bbox", backend="pycocotools"):
    """Writes ``coco_results`` (result records) to ``json_result_file`` and returns the
    evaluated COCOeval (evaluate, accumulate and summarize run)."""
    if iou_type != "bbox":
        raise ValueError("iou_type {!r} is not evaluated: an ATSS model gives boxes ('bbox') only".format(iou_type))
    with open(json_result_file, "w") as f:
        json.dump(coco_results, f)
    coco_eval = coco_evaluator(backend, coco_gt, coco_results)
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    return coco_eval


def do_coco_evaluation(dataset, predictions, box_only=False, output_folder=None, iou_types=("bbox",),
                       expected_results=(), expected_results_sigma_tol=4, logger=None, backend="pycocotools"):
    """Writes bbox.json and coco_metrics.json to ``output_folder`` (when given) and returns
    {"bbox": {metric: value}, "per_class": {name: AP}}; ``expected_results`` are checked (and
    logged) as officially."""
    check_backend(backend)
    check_box_evaluation(box_only, iou_types)
    logger = logger or logging.getLogger("atss_core.inference")
    results = prepare_for_coco_detection(predictions, dataset)
    if output_folder:
        os.makedirs(output_folder, exist_ok=True)
        with open(os.path.join(output_folder, "bbox.json"), "w") as f:
            json.dump(results, f)
    metrics = {name: 0.0 for name in METRICS}
    table = {}
    if not results:
        logger.warning("no detections at all: every AP is 0")
    else:
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            coco_eval = coco_evaluator(backend, dataset.coco, results)
            coco_eval.params.imgIds = sorted(dataset.ids)
            coco_eval.evaluate()
            coco_eval.accumulate()
            coco_eval.summarize()
        logger.info("COCO bbox evaluation (%s):\n%s", backend, stdout.getvalue().rstrip())
        metrics = {name: float(v) for name, v in zip(METRICS, coco_eval.stats[:6])}
        table = per_class_ap(coco_eval)
        logger.info("per-class AP:\n%s", "\n".join("  {:<24} {:.4f}".format(k, v) for k, v in table.items()))
    report = {"bbox": metrics, "per_class": table}
    if output_folder:
        with open(os.path.join(output_folder, "coco_metrics.json"), "w") as f:
            json.dump(report, f, indent=2)
    if expected_results:
        check_expected_results(report, expected_results, expected_results_sigma_tol)
    return report
