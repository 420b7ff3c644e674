"""Which anchors learn which ground truth: one plain function per MODEL.ATSS.POSITIVE_TYPE,
vectorised over anchors and gts, all with one keyword signature

    assigner(anchors=[A, 4], num_anchors_per_level=[int, ...], gt_boxes=[G, 4] xyxy, topk=int,
             num_anchors_per_location=int, fg_iou_threshold=float, bg_iou_threshold=float,
             plus_one=1 or 0, gt_areas=[G] or None) -> [A] int64: gt index, BACKGROUND or IGNORE

(each takes every keyword and uses those its rule needs), looked up by name in ASSIGNERS.
``plus_one`` is the box convention (MODEL.LEGACY_PLUS_ONE) of the IoUs; ``gt_areas`` (the
targets' BoxList.area(), in their own convention) break SSC's ties, computed from the boxes in
``plus_one``'s convention when None. The loss
calls them through :func:`assign`; nothing here reads the config.
"""
from typing import NamedTuple

import torch

from atss_core.modeling.matcher import Matcher
from atss_core.structures.bounding_box import TO_REMOVE
from atss_core.structures.boxlist_ops import box_iou_legacy, paired_box_iou_legacy

INF = 100000000
BACKGROUND = -1
IGNORE = -2
# SSC: the object sizes (max regression distance) each level is responsible for
SSC_OBJECT_SIZES = ((-1, 64), (64, 128), (128, 256), (256, 512), (512, INF))


def box_centres(boxes):
    """[N, 2] centres (x1 + x2) / 2, (y1 + y2) / 2 of xyxy boxes [N, 4]."""
    return torch.stack([(boxes[:, 2] + boxes[:, 0]) / 2.0, (boxes[:, 3] + boxes[:, 1]) / 2.0], dim=1)


def _centre_distances(anchor_centres, gt_boxes):
    """[A, G] Euclidean distances between anchor centres and gt centres (x and y terms added
    as the official [A, G, 2] sum does, so the bits are the same, without that tensor)."""
    gt_centres = box_centres(gt_boxes)
    dx = anchor_centres[:, 0, None] - gt_centres[None, :, 0]
    dy = anchor_centres[:, 1, None] - gt_centres[None, :, 1]
    return (dx.square() + dy.square()).sqrt()


def _ltrb(points, boxes):
    """Distances [..., 4] from points [..., 2] to the left, top, right, bottom sides of boxes [..., 4] (broadcast)."""
    return torch.stack([points[..., 0] - boxes[..., 0], points[..., 1] - boxes[..., 1],
                        boxes[..., 2] - points[..., 0], boxes[..., 3] - points[..., 1]], dim=-1)


def _inside(points, boxes, margin=0.01):
    """Whether points [..., 2] lie inside boxes [..., 4] (broadcast) by more than ``margin``."""
    return _ltrb(points, boxes).min(dim=-1).values > margin


def _best_positive_gt(ious, is_pos):
    """Per anchor, the positive gt with the highest IoU, else BACKGROUND."""
    masked = torch.where(is_pos, ious, torch.full_like(ious, -INF))
    values, index = masked.max(dim=1)
    return torch.where(values == -INF, torch.full_like(index, BACKGROUND), index)


class ATSSSelection(NamedTuple):
    """The steps of ATSS for every gt (what tools/visualize_assignment.py draws): the candidate
    anchors [K, G] (levels one after the other, min(topk x anchors per location, level size)
    rows each), their IoUs [K, G], each gt's threshold [G] (mean + std of its candidates' IoUs)
    and which candidates are positive [K, G]."""
    candidates: torch.Tensor
    candidate_ious: torch.Tensor
    threshold: torch.Tensor
    is_pos: torch.Tensor


def atss_selection(anchors, num_anchors_per_level, gt_boxes, topk, num_anchors_per_location=1,
                   plus_one=TO_REMOVE):
    """Per level, the ``topk`` x ``num_anchors_per_location`` anchors whose centres are nearest
    each gt centre are candidates; a candidate is positive when its IoU >= mean + std of the
    gt's candidate IoUs and its centre lies inside the gt. IoUs are computed for the candidates only."""
    candidates_per_level = topk * num_anchors_per_location
    anchor_ctr = box_centres(anchors)
    distances = _centre_distances(anchor_ctr, gt_boxes)
    candidates = []
    start = 0
    for count in num_anchors_per_level:
        k = min(candidates_per_level, count)
        _, idx = distances[start:start + count].topk(k, dim=0, largest=False)
        candidates.append(idx + start)
        start += count
    candidates = torch.cat(candidates, dim=0)  # [K, G]
    candidate_ious = paired_box_iou_legacy(anchors[candidates], gt_boxes[None, :, :], plus_one)
    threshold = candidate_ious.mean(0) + candidate_ious.std(0)
    is_pos = (candidate_ious >= threshold[None, :]) & _inside(anchor_ctr[candidates], gt_boxes)
    return ATSSSelection(candidates, candidate_ious, threshold, is_pos)


def assign_atss(*, anchors, num_anchors_per_level, gt_boxes, topk, num_anchors_per_location=1,
                fg_iou_threshold=None, bg_iou_threshold=None, plus_one=TO_REMOVE, gt_areas=None):
    """Adaptive training sample selection (:func:`atss_selection`); an anchor positive for
    several gts takes the highest IoU (the lowest gt index among equal ones). The IoU
    thresholds are not used.
    """
    candidates, candidate_ious, _, is_pos = atss_selection(anchors, num_anchors_per_level, gt_boxes, topk,
                                                           num_anchors_per_location, plus_one)
    gt_index = torch.arange(gt_boxes.shape[0], device=anchors.device).expand_as(candidates)
    pos_anchor, pos_gt, pos_iou = candidates[is_pos], gt_index[is_pos], candidate_ious[is_pos]
    best = torch.full((anchors.shape[0],), -INF, dtype=pos_iou.dtype, device=anchors.device)
    best = best.scatter_reduce(0, pos_anchor, pos_iou, reduce="amax")
    winner = pos_iou == best[pos_anchor]
    no_gt = gt_boxes.shape[0]
    result = torch.full((anchors.shape[0],), no_gt, dtype=torch.int64, device=anchors.device)
    result = result.scatter_reduce(0, pos_anchor[winner], pos_gt[winner], reduce="amin")
    return torch.where(result == no_gt, torch.full_like(result, BACKGROUND), result)


def assign_topk(*, anchors, num_anchors_per_level=None, gt_boxes, topk, num_anchors_per_location=1,
                fg_iou_threshold=None, bg_iou_threshold=None, plus_one=TO_REMOVE, gt_areas=None):
    """The ``topk`` anchors of highest IoU (ties broken by centre distance) with centres inside
    the gt, over all levels at once."""
    ious = box_iou_legacy(anchors, gt_boxes, plus_one)
    anchor_ctr = box_centres(anchors)
    distances = _centre_distances(anchor_ctr, gt_boxes)
    distances = distances / distances.max() / 1000
    _, idx = (ious - distances).topk(min(topk, anchors.shape[0]), dim=0)  # [k, G]
    inside = _inside(anchor_ctr[idx], gt_boxes)
    is_pos = torch.zeros_like(ious, dtype=torch.bool)
    gt_index = torch.arange(gt_boxes.shape[0], device=anchors.device).expand_as(idx)
    is_pos[idx[inside], gt_index[inside]] = True
    return _best_positive_gt(ious, is_pos)


def assign_ssc(*, anchors, num_anchors_per_level, gt_boxes, topk=None, num_anchors_per_location=1,
               fg_iou_threshold=None, bg_iou_threshold=None, plus_one=TO_REMOVE, gt_areas=None):
    """FCOS's spatial and scale constraints: the anchor centre inside the gt and the gt's largest
    distance from it within the level's size range; ties go to the smallest gt (``gt_areas``,
    else the areas in the ``plus_one`` convention)."""
    points = box_centres(anchors)
    sizes = torch.cat([points.new_tensor(SSC_OBJECT_SIZES[level]).expand(count, 2)
                       for level, count in enumerate(num_anchors_per_level)], dim=0)
    if gt_areas is None:
        gt_areas = (gt_boxes[:, 2] - gt_boxes[:, 0] + plus_one) * (gt_boxes[:, 3] - gt_boxes[:, 1] + plus_one)
    ltrb = _ltrb(points[:, None, :], gt_boxes)  # [A, G, 4]
    inside = ltrb.min(dim=2).values > 0.01
    largest = ltrb.max(dim=2).values
    in_level = (largest >= sizes[:, [0]]) & (largest <= sizes[:, [1]])
    area = gt_areas[None].expand(points.shape[0], -1).clone()
    area[~(inside & in_level)] = INF
    min_area, index = area.min(dim=1)
    return torch.where(min_area == INF, torch.full_like(index, BACKGROUND), index)


def assign_iou(*, anchors, num_anchors_per_level=None, gt_boxes, topk=None, num_anchors_per_location=1,
               fg_iou_threshold, bg_iou_threshold, plus_one=TO_REMOVE, gt_areas=None):
    """Max-IoU assignment (``fg_iou_threshold``/``bg_iou_threshold``, low-quality matches
    kept); positives whose anchor centre is outside their gt and anchors between the
    thresholds are ignored."""
    matcher = Matcher(fg_iou_threshold, bg_iou_threshold, True)
    matches = matcher(box_iou_legacy(gt_boxes, anchors, plus_one))
    gt_index = matches.clone()
    gt_index[matches == Matcher.BETWEEN_THRESHOLDS] = IGNORE
    gt_index[matches == Matcher.BELOW_LOW_THRESHOLD] = BACKGROUND
    pos_idx = (gt_index >= 0).nonzero().squeeze(1)
    inside = _inside(box_centres(anchors[pos_idx]), gt_boxes[gt_index[pos_idx]])
    gt_index[pos_idx[~inside]] = IGNORE
    return gt_index


# MODEL.ATSS.POSITIVE_TYPE -> assigner
ASSIGNERS = {"ATSS": assign_atss, "SSC": assign_ssc, "IoU": assign_iou, "TOPK": assign_topk}


def check_positive_type(positive_type):
    if positive_type not in ASSIGNERS:
        raise ValueError("MODEL.ATSS.POSITIVE_TYPE must be one of {}; got {!r}".format(
            ", ".join(ASSIGNERS), positive_type))
    return positive_type


def ignore_overlapping(gt_index, anchors, ignore_boxes, iof_threshold, plus_one=TO_REMOVE):
    """``gt_index`` with IGNORE for every BACKGROUND anchor whose area lies more than
    ``iof_threshold`` inside an ignore region (intersection over the anchor's area: mmdetection's
    "iof"); positives of real objects keep their gt."""
    if ignore_boxes.shape[0] == 0:
        return gt_index
    candidates = (gt_index == BACKGROUND).nonzero().squeeze(1)
    boxes = anchors[candidates]
    width = (torch.min(boxes[:, None, 2], ignore_boxes[None, :, 2])
             - torch.max(boxes[:, None, 0], ignore_boxes[None, :, 0]) + plus_one).clamp(min=0)
    height = (torch.min(boxes[:, None, 3], ignore_boxes[None, :, 3])
              - torch.max(boxes[:, None, 1], ignore_boxes[None, :, 1]) + plus_one).clamp(min=0)
    area = (boxes[:, 2] - boxes[:, 0] + plus_one) * (boxes[:, 3] - boxes[:, 1] + plus_one)
    iof = (width * height).amax(dim=1) / area
    result = gt_index.clone()
    result[candidates[iof > iof_threshold]] = IGNORE
    return result


def assign(positive_type, *, anchors, gt_boxes, **settings):
    """ASSIGNERS[positive_type](...) with no ground truth handled: every anchor BACKGROUND."""
    if gt_boxes.shape[0] == 0:
        return torch.full((anchors.shape[0],), BACKGROUND, dtype=torch.int64, device=anchors.device)
    return ASSIGNERS[check_positive_type(positive_type)](anchors=anchors, gt_boxes=gt_boxes, **settings)
