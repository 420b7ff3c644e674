#!/usr/bin/env python
"""Mutation check: plant realistic bugs in the detector's core, one at a time, and see whether
the tests notice.

    python tools/dev/mutation_check.py [--only ID ...] [--list] [--json FILE] [--keep]

Each mutant below is one small edit (a string that must occur exactly once in its file,
replaced by a buggy variant) with the test files that guard that module. The project is
copied (tracked files plus the built extension) to a temporary folder; for each mutant the
edit is applied there, the guarding tests run (pytest -x), and the mutant is "killed" when
they fail. Survivors are listed at the end with the reason given for each known-equivalent
mutant. ``make mutation`` runs it (about 10 minutes on 2 cores).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GOLDEN = "tests/golden"
CODER = "atss_core/modeling/rpn/atss/atss.py"  # the ATSS coder; modeling/box_coder.py is the R-CNN one
RCNN_CODER = "atss_core/modeling/box_coder.py"  # also holds the dw/dh clip both coders use
ANCHORS = "atss_core/modeling/rpn/anchor_generator.py"
LOSS = "atss_core/modeling/rpn/atss/loss.py"
ASSIGN = "atss_core/modeling/rpn/atss/assigners.py"
POST = "atss_core/modeling/rpn/atss/inference.py"
UTILS = "atss_core/modeling/rpn/utils.py"
AUG = "atss_core/engine/bbox_aug.py"
VOTE = "atss_core/engine/bbox_aug_vote.py"
COCO = "atss_core/data/datasets/evaluation/coco/coco_eval.py"
VOC = "atss_core/data/datasets/evaluation/voc/voc_eval.py"
TRANSFORMS = "atss_core/data/transforms/transforms.py"
SOLVER = "atss_core/solver/build.py"
SCHEDULER = "atss_core/solver/lr_scheduler.py"
SERIAL = "atss_core/weights/state_dict.py"
C2 = "atss_core/weights/caffe2.py"
BOX = "atss_core/structures/bounding_box.py"
OPS = "atss_core/structures/boxlist_ops.py"
HEAD = "atss_core/modeling/rpn/atss/atss.py"

MODEL_TESTS = [GOLDEN, "tests/modeling"]
MMDET = "atss_core/weights/mmdet.py"
MMDET_TESTS = ["tests/golden/test_mmdet_outputs.py", "tests/weights/test_mmdet_checkpoints.py"]
AUG_TESTS = ["tests/engine/test_bbox_aug.py", "tests/golden/test_official_outputs.py::test_multi_scale_test_matches_official"]
EVAL_TESTS = ["tests/engine/test_coco_evaluation.py", "tests/data/test_voc.py"]
DATA_TESTS = ["tests/data/test_transforms.py", "tests/structures", "tests/engine/test_bbox_aug.py",
              "tests/golden/test_official_outputs.py::test_multi_scale_test_matches_official"]
SOLVER_TESTS = ["tests/solver"]
CKPT_TESTS = ["tests/utils/test_checkpoint.py"]
EMA_FILE = "atss_core/engine/ema.py"
METRICS_FILE = "atss_core/utils/metrics_file.py"
VALIDATION = "atss_core/engine/validation.py"
DEFAULTS = "atss_core/engine/defaults.py"
RECIPE_TESTS = ["tests/engine/test_training_recipes.py"]
DATA_BUILD = "atss_core/data/build.py"
REPEAT = "atss_core/data/samplers/repeat_factor.py"
TRAINING_DATA_TESTS = ["tests/data/test_augmentation.py", "tests/data/test_training_targets.py",
                       "tests/data/test_samplers.py", "tests/modeling/test_ignore_regions_and_background.py"]
WORKFLOW_TESTS = ["tests/utils/test_metrics_file.py", "tests/tools/test_validation_during_training.py"]

# (id, file, original, mutated, tests)
MUTANTS = [
    # mmdetection's conventions (configs/mmdet/)
    ("mmdet-anchor-offset", ANCHORS, "return torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], dim=1)",
     "return torch.stack([0.5 - 0.5 * ws, 0.5 - 0.5 * hs, 0.5 + 0.5 * ws, 0.5 + 0.5 * hs], dim=1)", MMDET_TESTS),
    ("mmdet-decode-plus-one", CODER,
     "return torch.stack([ctr_x - 0.5 * w, ctr_y - 0.5 * h, ctr_x + 0.5 * w, ctr_y + 0.5 * h], dim=1)",
     "return torch.stack([ctr_x - 0.5 * (w - 1), ctr_y - 0.5 * (h - 1), ctr_x + 0.5 * (w - 1), ctr_y + 0.5 * (h - 1)], dim=1)",
     MMDET_TESTS),
    ("mmdet-score-sqrt", POST, "scores = ranked * torch.gather(centerness, -1, rows)",
     "scores = torch.sqrt(ranked * torch.gather(centerness, -1, rows))", MMDET_TESTS),
    ("mmdet-nms-class-agnostic", POST, "offsets = classes.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))",
     "offsets = 0 * classes.to(boxes)", MMDET_TESTS),
    ("mmdet-resize-rounding", TRANSFORMS, "return int(h * float(scale) + 0.5), int(w * float(scale) + 0.5)",
     "return int(h * float(scale)), int(w * float(scale))", MMDET_TESTS),
    ("mmdet-p6-p7-swapped", MMDET, '"backbone.fpn.top_blocks.p{}.{}".format(index + 3, leaf)',
     '"backbone.fpn.top_blocks.p{}.{}".format(10 - index, leaf)', MMDET_TESTS),

    # box coding
    ("coder-weights", CODER, "BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)", "BOX_WEIGHTS = (10.0, 10.0, 10.0, 10.0)", MODEL_TESTS),
    ("coder-to-remove", CODER, "plus_one = 1 if cfg.MODEL.LEGACY_PLUS_ONE else 0", "plus_one = 0", MODEL_TESTS),
    ("coder-decode-half", CODER, "ctr_x - 0.5 * (w - 1)", "ctr_x - 0.5 * w", MODEL_TESTS),
    ("coder-clip", RCNN_CODER, "BBOX_XFORM_CLIP = math.log(1000.0 / 16)", "BBOX_XFORM_CLIP = math.log(1000.0 / 8)",
     MODEL_TESTS),
    ("coder-point-unit", CODER, "float(atss.ANCHOR_SIZES[0]) / float(atss.ANCHOR_STRIDES[0])", "1.0", MODEL_TESTS),
    # anchors
    ("anchor-centre", ANCHORS, "ctr = 0.5 * base", "ctr = 0.5 * (base - 1)", MODEL_TESTS),
    ("anchor-order", ANCHORS, "all_ws = (ws[:, None] * scales[None, :]).reshape(-1)\n    all_hs = (hs[:, None] * scales[None, :]).reshape(-1)",
     "all_ws = (ws[None, :] * scales[:, None]).reshape(-1)\n    all_hs = (hs[None, :] * scales[:, None]).reshape(-1)",
     MODEL_TESTS),
    ("anchor-ratio", ANCHORS, "hs = torch.round(ws * ratios)", "hs = torch.round(ws / ratios)", MODEL_TESTS),
    ("anchor-shift-xy", ANCHORS, "torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)",
     "torch.stack((shift_y, shift_x, shift_y, shift_x), dim=1)", MODEL_TESTS),
    ("anchor-octave", ANCHORS, "math.pow(keys.OCTAVE, i / float(keys.SCALES_PER_OCTAVE))",
     "math.pow(keys.OCTAVE, i / float(keys.SCALES_PER_OCTAVE + 1))", MODEL_TESTS),
    ("anchor-visibility", ANCHORS, "(anchors[:, 2] < image_width + t)", "(anchors[:, 2] < image_height + t)",
     MODEL_TESTS),
    # assignment
    ("atss-threshold-std", ASSIGN, "threshold = candidate_ious.mean(0) + candidate_ious.std(0)",
     "threshold = candidate_ious.mean(0)", MODEL_TESTS),
    ("atss-threshold-strict", ASSIGN, "(candidate_ious >= threshold[None, :])", "(candidate_ious > threshold[None, :])",
     MODEL_TESTS),
    ("atss-topk-per-location", ASSIGN, "candidates_per_level = topk * num_anchors_per_location",
     "candidates_per_level = topk", MODEL_TESTS),
    ("atss-inside-margin", ASSIGN, "def _inside(points, boxes, margin=0.01):", "def _inside(points, boxes, margin=0.0):",
     MODEL_TESTS),
    ("assign-lowest-iou", ASSIGN, 'best = best.scatter_reduce(0, pos_anchor, pos_iou, reduce="amax")',
     'best = best.scatter_reduce(0, pos_anchor, -pos_iou, reduce="amax").neg()', MODEL_TESTS),
    ("topk-distance-sign", ASSIGN, "(ious - distances).topk(", "(ious + distances).topk(", MODEL_TESTS),
    ("ssc-sizes", ASSIGN, "SSC_OBJECT_SIZES = ((-1, 64), (64, 128),", "SSC_OBJECT_SIZES = ((-1, 32), (32, 128),",
     MODEL_TESTS),
    ("ssc-level-ignored", ASSIGN, "area[~(inside & in_level)] = INF", "area[~inside] = INF", MODEL_TESTS),
    ("iou-no-low-quality", ASSIGN, "Matcher(fg_iou_threshold, bg_iou_threshold, True)",
     "Matcher(fg_iou_threshold, bg_iou_threshold, False)", MODEL_TESTS),
    ("iou-outside-background", ASSIGN, "gt_index[pos_idx[~inside]] = IGNORE", "gt_index[pos_idx[~inside]] = BACKGROUND",
     MODEL_TESTS),
    ("labels-ignore-as-background", LOSS, "labels_per_image[gt_index == IGNORE] = -1",
     "labels_per_image[gt_index == IGNORE] = 0", MODEL_TESTS),
    # losses
    ("giou-as-iou", LOSS, "gious = inter / union - (enclosing - union) / enclosing", "gious = inter / union",
     MODEL_TESTS),
    ("giou-unweighted", LOSS, "return (losses * weight).sum()", "return losses.sum()", MODEL_TESTS),
    ("giou-no-order-fix", LOSS, "px2 = torch.max(px1, pred_boxes[:, 2])", "px2 = pred_boxes[:, 2]", MODEL_TESTS),
    ("cls-not-normalised", LOSS, "cls_loss = self.cls_loss_func(box_cls_flat, labels_flat.int()) / num_pos_avg",
     "cls_loss = self.cls_loss_func(box_cls_flat, labels_flat.int())", MODEL_TESTS),
    ("num-pos-not-averaged", LOSS, "num_pos_avg = max(total_num_pos / float(num_processes), 1.0)",
     "num_pos_avg = max(total_num_pos, 1.0)", MODEL_TESTS),
    ("centerness-sum-not-averaged", LOSS, "centerness_sum_avg = reduce_sum(centerness_targets.sum()).item() / float(num_processes)",
     "centerness_sum_avg = reduce_sum(centerness_targets.sum()).item()", MODEL_TESTS),
    ("centerness-target-no-sqrt", LOSS, "return torch.sqrt((left_right.min(dim=-1).values / left_right.max(dim=-1).values)",
     "return ((left_right.min(dim=-1).values / left_right.max(dim=-1).values)", MODEL_TESTS),
    ("centerness-loss-not-normalised", LOSS, "centerness_loss = self.centerness_loss_func(centerness_flat, centerness_targets) / num_pos_avg",
     "centerness_loss = self.centerness_loss_func(centerness_flat, centerness_targets)", MODEL_TESTS),
    ("reg-weight-ignored", LOSS, "return cls_loss, reg_loss * self.reg_loss_weight, centerness_loss",
     "return cls_loss, reg_loss, centerness_loss", MODEL_TESTS),
    ("focal-gamma-alpha-swapped", LOSS, "SigmoidFocalLoss(focal_gamma, focal_alpha)",
     "SigmoidFocalLoss(focal_alpha, focal_gamma)", MODEL_TESTS),
    # head and flattening
    ("head-point-bias", HEAD, "nn.init.constant_(self.bbox_pred.bias, 4.0)", "nn.init.constant_(self.bbox_pred.bias, 0.0)",
     MODEL_TESTS),
    ("flatten-anchor-class-order", UTILS, "layer.view(N, A, C, H, W).permute(0, 3, 4, 1, 2)",
     "layer.view(N, C, A, H, W).permute(0, 3, 4, 2, 1)", MODEL_TESTS),
    # post-processing
    ("post-no-centerness", POST, "ranked = torch.where(candidates, box_cls if rank_by_cls else box_cls * centerness[:, :, None], SENTINEL)",
     "ranked = torch.where(candidates, box_cls, SENTINEL)", MODEL_TESTS),
    ("post-score-no-sqrt", POST, "scores = torch.sqrt(ranked)", "scores = ranked", MODEL_TESTS),
    ("post-label-offset", POST, "labels = locations - rows * num_classes + 1", "labels = locations - rows * num_classes",
     MODEL_TESTS),
    ("post-no-clip", POST, "boxes = clip_boxes_to_image(boxes, width, height, plus_one)", "boxes = boxes", MODEL_TESTS),
    ("post-threshold-after-centerness", POST,
     "candidates = box_cls > pre_nms_thresh\n    ranked = torch.where(candidates, box_cls if rank_by_cls else box_cls * centerness[:, :, None], SENTINEL)",
     "ranked = box_cls * centerness[:, :, None]\n    candidates = ranked > pre_nms_thresh\n    ranked = torch.where(candidates, ranked, SENTINEL)",
     MODEL_TESTS),
    ("top-detections-drop-ties", OPS, "scores >= image_thresh.item()", "scores > image_thresh.item()",
     MODEL_TESTS + ["tests/structures", "tests/engine/test_bbox_aug.py"]),
    ("top-detections-kth", OPS, "count - detections_per_img + 1)", "count - detections_per_img)",
     MODEL_TESTS + ["tests/structures"]),
    ("iou-no-plus-one", OPS, "wh = (rb - lt + plus_one).clamp(min=0)", "wh = (rb - lt).clamp(min=0)",
     MODEL_TESTS + ["tests/structures"]),
    # multi-scale test
    ("aug-flip-not-undone", AUG, "return [output.transpose(FLIP_LEFT_RIGHT) for output in outputs]", "return outputs",
     AUG_TESTS),
    ("aug-range-linear", VOTE, "keep = ((area > min_scale * min_scale) & (area < max_scale * max_scale))",
     "keep = ((area > min_scale) & (area < max_scale))",
     AUG_TESTS),
    ("aug-small-scale-max-size", AUG, "                max_size = cfg.INPUT.MAX_SIZE_TEST\n", "                pass\n",
     AUG_TESTS),
    ("aug-merge-in-original-frame", AUG, "collected.append(output.resize(collected[0].size) if collected else output)",
     "collected.append(output.resize(T.image_size(image)))", AUG_TESTS),
    ("aug-vote-cap", AUG, "vote_detections_per_img=cfg.MODEL.ATSS.PRE_NMS_TOP_N)",
     "vote_detections_per_img=cfg.TEST.DETECTIONS_PER_IMG)", AUG_TESTS),
    ("vote-strict-threshold", VOTE, "members = remaining & (iou[best] >= vote_thresh)",
     "members = remaining & (iou[best] > vote_thresh)", AUG_TESTS),
    ("vote-plain-mean", VOTE, "return (boxes * scores[:, None]).sum(0) / scores.sum()", "return boxes.mean(0)",
     AUG_TESTS),
    ("soft-vote-decay", VOTE, "decayed = scores[idx] * (1 - iou_with_best)", "decayed = scores[idx] * iou_with_best",
     AUG_TESTS),
    ("soft-vote-threshold", VOTE, "keep = decayed >= score_th", "keep = decayed >= 0", AUG_TESTS),
    # evaluation
    ("coco-per-class-area", COCO, "p = precision[:, :, k, 0, -1]", "p = precision[:, :, k, 1, -1]", EVAL_TESTS),
    ("coco-per-class-maxdets", COCO, "p = precision[:, :, k, 0, -1]", "p = precision[:, :, k, 0, 0]", EVAL_TESTS),
    ("coco-metric-order", COCO, 'METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")',
     'METRICS = ("AP", "AP75", "AP50", "APs", "APm", "APl")', EVAL_TESTS),
    ("coco-no-resize", COCO, 'prediction = prediction.resize((info["width"], info["height"])).convert("xywh")',
     'prediction = prediction.convert("xywh")', EVAL_TESTS),
    ("voc-iou-threshold", VOC, "if v < iou_thresh:", "if v <= iou_thresh + 0.1:", EVAL_TESTS),
    ("voc-difficult-counted", VOC, "num_gt += int((~difficult).sum())", "num_gt += len(difficult)", EVAL_TESTS),
    ("voc-duplicate-tp", VOC, "elif not used[g]:", "elif True:", EVAL_TESTS),
    ("voc-area-metric", VOC, "def voc_class_aps(predictions, groundtruths, num_classes, iou_thresh=0.5, use_07_metric=True):",
     "def voc_class_aps(predictions, groundtruths, num_classes, iou_thresh=0.5, use_07_metric=False):", EVAL_TESTS),
    # transforms and boxes
    ("resize-cap-truncated", TRANSFORMS, "target = int(round(self.max_size * short / long))",
     "target = int(self.max_size * short / long)", DATA_TESTS),
    ("resize-long-side-rounded", TRANSFORMS, "return int(target * h / w), target", "return int(round(target * h / w)), target",
     DATA_TESTS),
    ("flip-target-kept", TRANSFORMS, "                target = target.transpose(FLIP_LEFT_RIGHT)\n", "                pass\n",
     DATA_TESTS),
    ("normalize-rgb", TRANSFORMS, "return (image - self.mean) / self.std, target",
     "return (image[[2, 1, 0]] - self.mean) / self.std, target", DATA_TESTS + [GOLDEN]),
    ("box-flip-plus-one", BOX, "flipped = (image_width - xmax - self.plus_one, ymin, image_width - xmin - self.plus_one, ymax)",
     "flipped = (image_width - xmax, ymin, image_width - xmin, ymax)", DATA_TESTS),
    ("box-resize-axes", BOX, "ratio_width, ratio_height = ratios", "ratio_height, ratio_width = ratios", DATA_TESTS),
    ("box-xywh-plus-one", BOX, "bbox = torch.cat((xmin, ymin, xmax - xmin + self.plus_one, ymax - ymin + self.plus_one), dim=-1)",
     "bbox = torch.cat((xmin, ymin, xmax - xmin, ymax - ymin), dim=-1)", DATA_TESTS + EVAL_TESTS),
    ("box-clip-width", BOX, "x = boxes[..., 0::2].clamp(min=0).minimum((width - plus_one) * ones)",
     "x = boxes[..., 0::2].clamp(min=0).minimum(width * ones)", DATA_TESTS + MODEL_TESTS),
    # solver
    ("solver-bias-lr", SOLVER, "lr = solver.BASE_LR * solver.BIAS_LR_FACTOR", "lr = solver.BASE_LR", SOLVER_TESTS),
    ("solver-bias-decay", SOLVER, "weight_decay = solver.WEIGHT_DECAY_BIAS", "weight_decay = solver.WEIGHT_DECAY",
     SOLVER_TESTS),
    ("solver-offset-lr", SOLVER, "lr *= solver.DCONV_OFFSETS_LR_FACTOR", "lr *= 1.0", SOLVER_TESTS),
    ("scheduler-step-early", SCHEDULER, "factor = self._factor(self.last_epoch)", "factor = self._factor(self.last_epoch + 1)",
     SOLVER_TESTS),
    ("scheduler-bisect-left", SCHEDULER, "bisect_right(self.milestones, iteration)", "bisect_left(self.milestones, iteration)",
     SOLVER_TESTS),
    ("scheduler-warmup-alpha", SCHEDULER, "alpha = float(iteration) / warmup_iters",
     "alpha = float(iteration + 1) / warmup_iters", SOLVER_TESTS),
    # checkpoints
    ("ckpt-suffix-boundary", SERIAL, 'model_key.endswith("." + loaded_key)', "model_key.endswith(loaded_key)", CKPT_TESTS),
    ("ckpt-shortest-suffix", SERIAL, "if best is None or len(loaded_key) > len(best):",
     "if best is None or len(loaded_key) < len(best):", CKPT_TESTS),
    ("ckpt-module-prefix", SERIAL, 'loaded_state_dict = strip_prefix_if_present(loaded_state_dict, prefix="module.")',
     "pass", CKPT_TESTS),
    ("ckpt-shape-mismatch-loaded", SERIAL,
     "            report[\"mismatched\"].append((model_key, tuple(model_state_dict[model_key].shape), tuple(value.shape)))\n            continue\n",
     "            report[\"mismatched\"].append((model_key, tuple(model_state_dict[model_key].shape), tuple(value.shape)))\n",
     CKPT_TESTS),
    ("c2-dcn-rename", C2, 'key = key.replace("conv2.weight", "conv2.conv.weight")', "pass", CKPT_TESTS),
    ("c2-stem-norm", C2, 'k = re.sub(r"^(res\\.)?conv1\\.(bn|gn)\\.", "bn1.", k)', 'k = re.sub(r"^res\\.conv1\\.bn\\.", "bn1.", k)',
     CKPT_TESTS),
    ("c2-downsample-norm", C2, 'k = k.replace(".branch1.bn.", ".downsample.1.")', 'k = k.replace(".branch1.bn.", ".branch1.bn.")',
     CKPT_TESTS),
]

DATASET = "atss_core/data/datasets/coco.py"
TRANSFORM_BUILD = "atss_core/data/transforms/build.py"
CHECKPOINT = "atss_core/utils/checkpoint.py"
FUSION = "atss_core/modeling/fusion.py"
MUTANTS += [
    ("coder-log-ratio", CODER, "ww * torch.log(gw / aw)", "ww * torch.log(aw / gw)", MODEL_TESTS),
    ("coder-point-sign", CODER, "u * (acx - gt_boxes[:, 0]) / aw", "u * (gt_boxes[:, 0] - acx) / aw", MODEL_TESTS),
    ("anchor-straddle-off", ANCHORS, "if t < 0:", "if t <= 0:", MODEL_TESTS),
    ("ssc-largest-area", ASSIGN, "min_area, index = area.min(dim=1)", "min_area, index = area.max(dim=1)", MODEL_TESTS),
    ("iou-between-as-background", ASSIGN, "gt_index[matches == Matcher.BETWEEN_THRESHOLDS] = IGNORE",
     "gt_index[matches == Matcher.BETWEEN_THRESHOLDS] = BACKGROUND", MODEL_TESTS),
    ("topk-distance-weight", ASSIGN, "distances = distances / largest / 1000",
     "distances = distances / largest / 10", MODEL_TESTS),
    ("labels-background-kept", LOSS, "labels_per_image[gt_index == BACKGROUND] = 0\n", "pass\n", MODEL_TESTS),
    ("centerness-target-max", LOSS, "* (top_bottom.min(dim=-1).values / top_bottom.max(dim=-1).values))",
     "* (top_bottom.max(dim=-1).values / top_bottom.max(dim=-1).values))", MODEL_TESTS),
    ("post-no-pre-nms-cap", POST, "pre_nms_top_n = candidates.reshape(N, -1).sum(1).clamp(max=pre_nms_top_n)",
     "pre_nms_top_n = candidates.reshape(N, -1).sum(1)", MODEL_TESTS),
    ("post-class-agnostic-nms", POST, "result = boxlist_ml_nms(boxlist, self.nms_thresh)",
     "result = boxlist_nms(boxlist, self.nms_thresh)", MODEL_TESTS),
    ("ml-nms-score-order", OPS, "return boxlist[keep.sort().values].convert(mode)", "return boxlist[keep].convert(mode)",
     MODEL_TESTS + ["tests/structures/test_bounding_box.py"]),
    ("aug-range-inclusive", VOTE, "keep = ((area > min_scale * min_scale) & (area < max_scale * max_scale))",
     "keep = ((area >= min_scale * min_scale) & (area <= max_scale * max_scale))",
     AUG_TESTS),
    ("aug-flip-run-unflipped", AUG, "runs.append((cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, True, None))",
     "runs.append((cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, False, None))", AUG_TESTS),
    ("aug-result-frame", AUG, "results.append(merged.resize(T.image_size(image)))", "results.append(merged)",
     AUG_TESTS),
    ("vote-mean-score", VOTE, "merged_scores = torch.stack([scores[idx].max() for idx, _ in clusters])",
     "merged_scores = torch.stack([scores[idx].mean() for idx, _ in clusters])", AUG_TESTS),
    ("soft-vote-unsorted", VOTE, "    order = merged_scores.argsort(descending=True)\n    return merged_boxes[order], merged_scores[order]",
     "    return merged_boxes, merged_scores", AUG_TESTS),
    ("vote-last-class-dropped", VOTE, "classes = range(1, num_classes) if", "classes = range(1, num_classes - 1) if",
     AUG_TESTS),
    ("coco-category-unmapped", COCO, '"category_id": dataset.contiguous_category_id_to_json_id[label]',
     '"category_id": label', EVAL_TESTS),
    ("coco-categories-sorted", DATASET, "enumerate(self.coco.getCatIds())", "enumerate(sorted(self.coco.getCatIds()))",
     EVAL_TESTS + ["tests/data/test_coco_dataset.py"]),
    ("train-no-flip", TRANSFORM_BUILD, 'flip_prob = _probability(cfg, "HORIZONTAL_FLIP_PROB_TRAIN")',
     "flip_prob = 0.0", DATA_TESTS + ["tests/data/test_build.py"]),
    ("train-size-range-exclusive", TRANSFORM_BUILD, "return list(range(lo, hi + 1))", "return list(range(lo, hi))",
     DATA_TESTS + ["tests/data/test_build.py"]),
    ("box-area-plus-one", BOX, "return (box[:, 2] - box[:, 0] + self.plus_one) * (box[:, 3] - box[:, 1] + self.plus_one)",
     "return (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])", DATA_TESTS + MODEL_TESTS),
    ("solver-no-momentum", SOLVER, "momentum=solver.MOMENTUM)", "momentum=0.0)", SOLVER_TESTS),
    ("scheduler-warmup-direction", SCHEDULER, "return warmup_factor * (1 - alpha) + alpha",
     "return warmup_factor * alpha + (1 - alpha)", SOLVER_TESTS),
    # the training workflow (SOLVER.TEST_PERIOD, metrics.json, model_best, the recipe switches)
    ("accumulate-own-positives", LOSS, "total_num_pos = given[0]",
     "total_num_pos = float(pos_inds.numel())", RECIPE_TESTS),
    ("accumulate-own-centerness", LOSS, "centerness_sum_avg = given[1] / float(num_processes)",
     "centerness_sum_avg = float(centerness_targets.sum()) / float(num_processes)", RECIPE_TESTS),
    ("cosine-no-end-lr", SCHEDULER, "values.append(warmup * (end + (base_lr - end) * cosine))",
     "values.append(warmup * base_lr * cosine)", RECIPE_TESTS),
    ("ema-no-warmup", EMA_FILE, "return self.decay * (1 - math.exp(-self.updates / self.warmup_iters))",
     "return self.decay", RECIPE_TESTS),
    ("norm-decay-ignored", SOLVER, "weight_decay = solver.WEIGHT_DECAY_NORM", "weight_decay = solver.WEIGHT_DECAY",
     RECIPE_TESTS),
    ("metrics-duplicate-lines", METRICS_FILE, "if key in self.written:", "if False:", WORKFLOW_TESTS),
    ("best-sign-ignored", VALIDATION, 'self.sign = -1.0 if spec.startswith("-") else 1.0', "self.sign = 1.0",
     WORKFLOW_TESTS),
    ("best-not-resumed", DEFAULTS, 'RESUMED_STATE = ("iteration", "seed", "grad_scaler", "best", "ema")',
     'RESUMED_STATE = ("iteration", "seed", "grad_scaler", "ema")', WORKFLOW_TESTS),
    # the training data (augmentation, background images, ignore regions, repeat-factor sampling)
    ("v2-boxes-inclusive", TRANSFORMS,
     "exclusive = target.bbox + target.bbox.new_tensor([0.0, 0.0, plus_one, plus_one])",
     "exclusive = target.bbox.clone()", TRAINING_DATA_TESTS),
    ("scale-jitter-not-cropped", TRANSFORMS, "if new_h > height or new_w > width:", "if False:",
     TRAINING_DATA_TESTS),
    ("v2-fields-not-followed", TRANSFORMS, 'result.add_field(name, target.get_field(name)[kept])',
     'result.add_field(name, target.get_field(name)[:len(kept)])', TRAINING_DATA_TESTS),
    ("v2-edge-boxes-unclamped", TRANSFORMS, "exclusive.new_tensor([width, height, width, height])",
     "exclusive.new_tensor([width + 1, height, width + 1, height])",
     TRAINING_DATA_TESTS),
    ("iou-crop-counts-ignore-regions", TRANSFORMS, 'objects = sample["object_by_index"][labels]',
     "objects = torch.ones_like(labels, dtype=torch.bool)", TRAINING_DATA_TESTS),
    ("ignore-overrides-positives", ASSIGN, "candidates = (gt_index == BACKGROUND).nonzero().squeeze(1)",
     "candidates = (gt_index != IGNORE).nonzero().squeeze(1)", TRAINING_DATA_TESTS),
    ("ignore-by-any-overlap", ASSIGN, "result[candidates[iof > iof_threshold]] = IGNORE",
     "result[candidates[iof > 0]] = IGNORE", TRAINING_DATA_TESTS),
    ("crowd-is-an-object", LOSS, "targets_per_image, ignore_regions = split_ignore_regions(targets_per_image)",
     "ignore_regions = None", TRAINING_DATA_TESTS),
    ("empty-images-always-filtered", DATA_BUILD,
     'args["remove_images_without_annotations"] = is_train and filter_empty',
     'args["remove_images_without_annotations"] = is_train', TRAINING_DATA_TESTS),
    ("repeat-factor-no-sqrt", REPEAT, "max(1.0, math.sqrt(threshold / (count / num_images)))",
     "max(1.0, threshold / (count / num_images))", TRAINING_DATA_TESTS),
    ("repeat-rounding-fixed", REPEAT, "g.manual_seed(self.seed + self.epoch)", "g.manual_seed(self.seed)",
     TRAINING_DATA_TESTS),
    ("assign-tie-highest-gt", ASSIGN, 'result = result.scatter_reduce(0, pos_anchor[winner], pos_gt[winner], reduce="amin")',
     'result = result.scatter_reduce(0, pos_anchor[winner], pos_gt[winner], reduce="amax")', MODEL_TESTS),
    ("fusion-no-shift", FUSION, "conv.bias = nn.Parameter(shift.to(conv.weight.dtype), requires_grad=False)",
     "conv.bias = nn.Parameter(torch.zeros_like(shift), requires_grad=False)", ["tests/modeling/test_fusion.py"]),
    ("fusion-scale-sqrt", FUSION, "scale = norm.weight * (norm.running_var + norm.eps).rsqrt()",
     "scale = norm.weight * (norm.running_var + norm.eps).sqrt()", ["tests/modeling/test_fusion.py"]),
    ("fusion-shortcut-kept", FUSION, "            shortcut[1] = nn.Identity()\n", "            pass\n",
     ["tests/modeling/test_fusion.py"]),
    ("resume-optimizer-lost", CHECKPOINT, "                self.optimizer.load_state_dict(checkpoint.pop(\"optimizer\"))\n",
     "                checkpoint.pop(\"optimizer\")\n", CKPT_TESTS),
    ("resume-scheduler-lost", CHECKPOINT, "                self.scheduler.load_state_dict(checkpoint.pop(\"scheduler\"))\n",
     "                checkpoint.pop(\"scheduler\")\n", CKPT_TESTS),
]

# dense scenes (issue 34): sliced assignment, COCO_MAX_DETS, class-agnostic NMS, tiling
MATCHER = "atss_core/modeling/matcher.py"
TILING = "atss_core/engine/tiling.py"
DENSE_TESTS = ["tests/modeling/test_dense_assignment.py"]
MUTANTS += [
    ("matcher-slices-tie-to-later-gt", MATCHER, "later = vals > matched_vals", "later = vals >= matched_vals",
     DENSE_TESTS),
    ("atss-slice-offset-lost", ASSIGN, "        candidates[:, part] = _nearest_candidates(",
     "        candidates[:, :part.stop - part.start] = _nearest_candidates(", DENSE_TESTS),
    ("coco-summary-last-max-dets", COCO, "values = values[..., area_index, which]", "values = values[..., area_index, -1]",
     ["tests/engine/test_coco_max_dets.py"]),
    ("nms-agnostic-ignored", OPS, "        labels = torch.zeros_like(labels)\n", "        pass\n",
     ["tests/modeling/test_class_agnostic_nms.py"]),
    ("onnx-agnostic-ignored", "atss_core/export/onnx.py", "    if class_agnostic:\n        class_scores",
     "    if False:\n        class_scores", ["tests/tools/test_export_onnx.py"]),
    ("tile-cut-boxes-kept", TILING, "    return ~cut\n", "    return torch.ones_like(cut)\n",
     ["tests/engine/test_tiling.py"]),
    ("tile-offset-lost", TILING, "shift = boxlist.bbox.new_tensor([offset_x, offset_y, offset_x, offset_y])",
     "shift = boxlist.bbox.new_tensor([offset_x, offset_y, offset_y, offset_x])", ["tests/engine/test_tiling.py"]),
]

# mutants that cannot change any observable behaviour, with the reason
EQUIVALENT = {}


def copy_project(dest):
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    built = [os.path.join("atss_core", f) for f in os.listdir(os.path.join(ROOT, "atss_core")) if f.startswith("_C")]
    for rel in files + built:
        src = os.path.join(ROOT, rel)
        if not os.path.isfile(src):
            continue
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(src, os.path.join(dest, rel))


def run_mutant(workdir, mutant, timeout):
    ident, rel, original, mutated, tests = mutant
    path = os.path.join(workdir, rel)
    with open(path) as f:
        source = f.read()
    count = source.count(original)
    if count != 1:
        return "stale", "the original text occurs {} times in {}".format(count, rel), 0.0
    with open(path, "w") as f:
        f.write(source.replace(original, mutated))
    compiled = subprocess.run([sys.executable, "-m", "py_compile", path], capture_output=True, text=True)
    if compiled.returncode != 0:
        with open(path, "w") as f:
            f.write(source)
        return "invalid", "the mutant does not compile: " + compiled.stderr.strip().splitlines()[-1], 0.0
    start = time.time()
    try:
        result = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                                cwd=workdir, capture_output=True, text=True, timeout=timeout,
                                env=dict(os.environ, PYTHONPATH=workdir, PYTHONDONTWRITEBYTECODE="1"))
        status = "killed" if result.returncode != 0 else "survived"
        detail = (result.stdout.strip().splitlines() or [""])[-1]
    except subprocess.TimeoutExpired:
        status, detail = "killed", "timed out after {} s".format(timeout)
    finally:
        with open(path, "w") as f:
            f.write(source)
    return status, detail, time.time() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="mutant ids to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per mutant")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy")
    args = parser.parse_args(argv)
    mutants = [m for m in MUTANTS if not args.only or m[0] in args.only]
    if args.list:
        for ident, rel, _, _, tests in mutants:
            print("{:<34} {:<48} {}".format(ident, rel, " ".join(tests)))
        return 0
    if not mutants:
        raise SystemExit("no mutant matches --only {}".format(args.only))
    workdir = tempfile.mkdtemp(prefix="atss_mutation_")
    copy_project(workdir)
    imported = subprocess.run([sys.executable, "-c", "import atss_core, os; print(os.path.realpath(atss_core.__file__))"],
                              cwd=workdir, capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=workdir)).stdout.strip()
    if not imported.startswith(os.path.realpath(workdir)):
        raise SystemExit("the copy in {} imports atss_core from {}, not from itself".format(workdir, imported))
    results = []
    begin = time.time()
    try:
        for i, mutant in enumerate(mutants, 1):
            status, detail, seconds = run_mutant(workdir, mutant, args.timeout)
            results.append({"id": mutant[0], "file": mutant[1], "status": status, "seconds": round(seconds, 1),
                            "detail": detail})
            print("[{:>2}/{}] {:<34} {:<8} {:5.1f} s  {}".format(i, len(mutants), mutant[0], status, seconds, detail),
                  flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    stale = [r for r in results if r["status"] in ("stale", "invalid")]
    counted = [r for r in results if r not in stale and r["id"] not in EQUIVALENT]
    killed = [r for r in counted if r["status"] == "killed"]
    survivors = [r for r in counted if r["status"] == "survived"]
    rate = 100.0 * len(killed) / max(len(counted), 1)
    print("\n{} of {} non-equivalent mutants killed ({:.1f}%) in {:.0f} s".format(len(killed), len(counted), rate,
                                                                              time.time() - begin))
    for r in survivors:
        print("  survived:", r["id"], "({})".format(r["file"]))
    for ident, reason in EQUIVALENT.items():
        print("  equivalent:", ident, "-", reason)
    for r in stale:
        print("  {} (fix the mutant list): {} - {}".format(r["status"].upper(), r["id"], r["detail"]))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"killed_percent": rate, "results": results, "equivalent": EQUIVALENT}, f, indent=1)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
