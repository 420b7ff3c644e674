"""Which anchors each POSITIVE_TYPE makes positive for one image, and why (ATSS's candidates and
thresholds): the numbers and pictures of tools/visualize_assignment.py.

The image goes through the test-time resize (deterministic); the anchors are the config's, for
the padded size; the assignment is the loss's own (ATSSLossComputation.assign), ignore regions
included, so what is drawn is what training would use.
"""
import dataclasses

import cv2
import numpy as np
import torch

from atss_core.data.transforms.build import normalize_transform
from atss_core.modeling.rpn.atss.assigners import ASSIGNERS, IGNORE, atss_selection, box_centres
from atss_core.modeling.rpn.atss.loss import ATSSLossComputation
from atss_core.structures.boxlist_ops import cat_boxlist, split_ignore_regions
from atss_core.structures.image_list import to_image_list
from atss_core.utils.drawing import IGNORE_COLOUR, draw_box, draw_label, grid, label_name, palette, titled

POSITIVE_TYPES = tuple(ASSIGNERS)


def anchors_of(model, image_tensor, size_divisibility):
    """The anchors (a BoxList per level) of one transformed image, from the levels' shapes alone."""
    images = to_image_list([image_tensor], size_divisibility)
    return model.rpn.anchors_for_shapes(images, model.feature_shapes(*images.tensors.shape[-2:]))[0]


def assignments(model, anchors_per_level, target, positive_types=POSITIVE_TYPES):
    """{positive type: [A] gt index / BACKGROUND / IGNORE} as the loss assigns them."""
    base = model.rpn.loss_evaluator
    result = {}
    for positive_type in positive_types:
        settings = dataclasses.replace(base.settings, positive_type=positive_type)
        result[positive_type] = ATSSLossComputation(None, base.box_coder, settings=settings).assign(
            anchors_per_level, target)
    return result


def atss_report(model, anchors_per_level, target, gt_index):
    """Per ground truth: its candidates per level, their IoU mean, std and the threshold, and the
    positives it got in the end (``gt_index``: the ATSS assignment)."""
    settings = model.rpn.loss_evaluator.settings
    objects, _ = split_ignore_regions(target)
    counts = [len(level) for level in anchors_per_level]
    anchors = cat_boxlist(anchors_per_level).bbox
    if len(objects) == 0:
        return [], None
    selection = atss_selection(anchors, counts, objects.convert("xyxy").bbox, settings.topk,
                               settings.num_anchors_per_location, model.rpn.loss_evaluator.plus_one)
    per_level = [min(settings.topk * settings.num_anchors_per_location, count) for count in counts]
    level_of_anchor = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    rows = []
    for g in range(len(objects)):
        ious = selection.candidate_ious[:, g]
        mine = gt_index == g
        rows.append({
            "gt": g,
            "label": int(objects.get_field("labels")[g]),
            "box": [round(v, 1) for v in objects.bbox[g].tolist()],
            "candidates_per_level": per_level,
            "iou_mean": float(ious.mean()),
            "iou_std": float(ious.std()),
            "threshold": float(selection.threshold[g]),
            "selected": int(selection.is_pos[:, g].sum()),
            "positives": int(mine.sum()),
            "positives_per_level": torch.bincount(level_of_anchor[mine], minlength=len(counts)).tolist(),
            "lost_to_another_gt": int((selection.is_pos[:, g] & (gt_index[selection.candidates[:, g]] != g)).sum()),
        })
    return rows, selection


def _dot(canvas, centre, colour, radius, filled=True):
    cv2.circle(canvas, (int(round(centre[0])), int(round(centre[1]))), radius, colour, -1 if filled else 1,
               cv2.LINE_AA)


def _upscaled(image, min_side):
    """``image`` enlarged so that its shorter side is at least ``min_side`` (small training
    sizes leave no room for the markers), and the factor."""
    factor = max(1.0, float(min_side) / min(image.shape[:2]))
    if factor == 1.0:
        return image.copy(), factor
    size = (int(round(image.shape[1] * factor)), int(round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), factor


def draw_assignment(image, target, anchors, gt_index, selection=None, class_names=None, min_side=600,
                    max_anchor_boxes=30):
    """``image`` with the gts, the positive anchors (a dot at the centre, in their gt's colour,
    and the anchor box where there are at most ``max_anchor_boxes`` positives), the ignored
    anchors (grey crosses) and, for ATSS (``selection``), every candidate (a ring) and the
    candidates that passed the threshold but went to another gt (a red ring)."""
    canvas, factor = _upscaled(image, min_side)
    objects, regions = split_ignore_regions(target)
    anchors = anchors * factor
    centres = box_centres(anchors).tolist()
    radius = max(2, int(min(canvas.shape[:2]) / 150))
    if regions is not None:
        for box in (regions.bbox * factor).tolist():
            draw_box(canvas, box, IGNORE_COLOUR, "ignore", dashed=True)
    for a in (gt_index == IGNORE).nonzero().squeeze(1).tolist():
        x, y = centres[a]
        cv2.drawMarker(canvas, (int(x), int(y)), IGNORE_COLOUR, cv2.MARKER_TILTED_CROSS, 2 * radius, 1)
    colours = [palette(g + 1) for g in range(len(objects))]
    if selection is not None:
        for g in range(len(objects)):
            for k, a in enumerate(selection.candidates[:, g].tolist()):
                lost = bool(selection.is_pos[k, g]) and int(gt_index[a]) != g
                _dot(canvas, centres[a], (0, 0, 255) if lost else colours[g], radius + 2, filled=False)
    for g, box in enumerate((objects.bbox * factor).tolist()):
        label = int(objects.get_field("labels")[g])
        draw_box(canvas, box, colours[g], "gt {} {}".format(g, label_name(class_names, label)))
    positives = (gt_index >= 0).nonzero().squeeze(1).tolist()
    for a in positives:
        colour = colours[int(gt_index[a])]
        if len(positives) <= max_anchor_boxes:
            cv2.rectangle(canvas, tuple(int(round(v)) for v in anchors[a, :2].tolist()),
                          tuple(int(round(v)) for v in anchors[a, 2:].tolist()), colour, 1)
        _dot(canvas, centres[a], colour, radius)
    return canvas


def compare_panels(image, target, anchors, by_type, selection=None, class_names=None):
    """One titled panel per POSITIVE_TYPE (ATSS with its candidates), in a 2-column grid."""
    panels = []
    objects, _ = split_ignore_regions(target)
    for positive_type, gt_index in by_type.items():
        drawn = draw_assignment(image, target, anchors, gt_index, selection if positive_type == "ATSS" else None,
                                class_names)
        title = "{}: {} positives for {} gts, {} ignored".format(
            positive_type, int((gt_index >= 0).sum()), len(objects), int((gt_index == IGNORE).sum()))
        panels.append(titled(drawn, title))
    return grid(panels, columns=2)


def markdown_table(rows, level_names):
    """The per-gt ATSS table as markdown."""
    lines = ["| gt | label | candidates ({}) | IoU mean | IoU std | threshold | passed | positives ({}) | "
             "lost to another gt |".format("/".join(level_names), "/".join(level_names)),
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append("| {gt} | {label} | {cands} | {iou_mean:.3f} | {iou_std:.3f} | {threshold:.3f} | {selected} | "
                     "{positives} ({levels}) | {lost_to_another_gt} |".format(
                         cands="/".join(str(c) for c in r["candidates_per_level"]),
                         levels="/".join(str(c) for c in r["positives_per_level"]), **r))
    return "\n".join(lines) + "\n"


def denormalized(cfg, tensor):
    return normalize_transform(cfg).invert(tensor)


def legend(canvas):
    """A short key of the markers under a picture."""
    band = np.full((24, canvas.shape[1], 3), 255, dtype=np.uint8)
    draw_label(band, "dot+box: positive anchor; ring: ATSS candidate; red ring: passed but went to another gt; "
               "grey x: ignored", 4, 20, (255, 255, 255), 0.8)
    return np.concatenate([canvas, band], axis=0)
