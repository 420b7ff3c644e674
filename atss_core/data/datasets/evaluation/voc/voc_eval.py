"""Pascal VOC mAP (the official maskrcnn-benchmark protocol: legacy +1 IoU >= 0.5,
difficult objects neither count nor penalise, VOC2007 11-point AP by default)."""
import json
import logging
import os

import numpy as np

from atss_core.structures.boxlist_ops import box_iou_legacy


def voc_ap(recall, precision, use_07_metric=True):
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            p = np.max(precision[recall >= t]) if np.any(recall >= t) else 0.0
            ap += p / 11.0
        return ap
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = max(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def calc_detection_voc_prec_rec(gt_boxlists, pred_boxlists, iou_thresh=0.5, num_classes=None):
    """Per label l in 0 .. L - 1 (L: ``num_classes``, else the largest label + 1), the precision
    and recall arrays of label l's detections ranked by score over all images: a detection is a
    true positive when its best gt of label l (legacy +1 IoU) reaches ``iou_thresh`` and is not
    taken yet; one whose best gt is difficult is left out. rec[l] is None for a label without
    non-difficult gt."""
    if num_classes is None:
        labels = [b.get_field("labels") for b in list(gt_boxlists) + list(pred_boxlists) if len(b)]
        num_classes = max((int(t.max()) for t in labels), default=0) + 1
    precisions, recalls = [None] * num_classes, [None] * num_classes
    for label in range(1, num_classes):
        records = []  # (score, is_tp or -1 for ignored)
        num_gt = 0
        for prediction, gt in zip(pred_boxlists, gt_boxlists):
            gt_mask = gt.get_field("labels") == label
            gt_boxes = gt.bbox[gt_mask]
            difficult = gt.get_field("difficult")[gt_mask]
            num_gt += int((~difficult).sum())
            pred_mask = prediction.get_field("labels") == label
            boxes = prediction.bbox[pred_mask]
            scores = prediction.get_field("scores")[pred_mask]
            order = scores.argsort(descending=True)
            boxes, scores = boxes[order], scores[order]
            if len(gt_boxes) == 0:
                records += [(float(s), 0) for s in scores]
                continue
            iou = box_iou_legacy(boxes, gt_boxes).numpy()
            best = iou.argmax(axis=1) if len(boxes) else np.zeros(0, dtype=int)
            best_iou = iou.max(axis=1) if len(boxes) else np.zeros(0)
            used = np.zeros(len(gt_boxes), dtype=bool)
            for score, g, v in zip(scores.tolist(), best, best_iou):
                if v < iou_thresh:
                    records.append((score, 0))
                elif bool(difficult[g]):
                    records.append((score, -1))
                elif not used[g]:
                    used[g] = True
                    records.append((score, 1))
                else:
                    records.append((score, 0))
        records.sort(key=lambda r: -r[0])
        flags = np.array([r[1] for r in records if r[1] >= 0], dtype=np.float64)
        tp = np.cumsum(flags == 1)
        fp = np.cumsum(flags == 0)
        precisions[label] = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        if num_gt > 0:
            recalls[label] = tp / num_gt
    return precisions, recalls


def calc_detection_voc_ap(prec, rec, use_07_metric=False):
    """AP per label from :func:`calc_detection_voc_prec_rec` (nan where either is None)."""
    return np.array([float("nan") if p is None or r is None else voc_ap(r, p, use_07_metric)
                     for p, r in zip(prec, rec)])


def eval_detection_voc(pred_boxlists, gt_boxlists, iou_thresh=0.5, use_07_metric=False):
    """{"ap": AP per label (nan without gt), "map": their mean over the labels with gt}."""
    prec, rec = calc_detection_voc_prec_rec(gt_boxlists, pred_boxlists, iou_thresh)
    ap = calc_detection_voc_ap(prec, rec, use_07_metric)
    return {"ap": ap, "map": float(np.nanmean(ap)) if np.any(~np.isnan(ap)) else 0.0}


def voc_class_aps(predictions, groundtruths, num_classes, iou_thresh=0.5, use_07_metric=True):
    """AP per class id 1..num_classes-1 (nan for a class without non-difficult gt)."""
    prec, rec = calc_detection_voc_prec_rec(groundtruths, predictions, iou_thresh, num_classes)
    ap = calc_detection_voc_ap(prec, rec, use_07_metric)
    return {label: float(ap[label]) for label in range(1, num_classes)}


def do_voc_evaluation(dataset, predictions, output_folder, logger=None):
    logger = logger or logging.getLogger("atss_core.inference")
    groundtruths, resized = [], []
    for index, prediction in enumerate(predictions):
        info = dataset.get_img_info(index)
        groundtruths.append(dataset.get_groundtruth(index, keep_difficult=True))
        resized.append(prediction.resize((info["width"], info["height"])))
    aps = voc_class_aps(resized, groundtruths, len(dataset.classes))
    valid = [v for v in aps.values() if not np.isnan(v)]
    report = {"mAP": float(np.mean(valid)) if valid else 0.0,
              "per_class": {dataset.map_class_id_to_class_name(k): v for k, v in aps.items()}}
    logger.info("VOC mAP: %.4f\n%s", report["mAP"],
                "\n".join("  {:<16} {:.4f}".format(k, v) for k, v in report["per_class"].items()))
    if output_folder:
        os.makedirs(output_folder, exist_ok=True)
        with open(os.path.join(output_folder, "voc_metrics.json"), "w") as f:
            json.dump(report, f, indent=2)
    return report
