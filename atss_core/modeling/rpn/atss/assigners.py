"""Which anchors learn which ground truth: one plain function per MODEL.ATSS.POSITIVE_TYPE,
vectorised over anchors and gts, all with one keyword signature

    assigner(anchors=[A, 4], num_anchors_per_level=[int, ...], gt_boxes=[G, 4] xyxy, topk=int,
             num_anchors_per_location=int, fg_iou_threshold=float, bg_iou_threshold=float,
             plus_one=1 or 0, gt_areas=[G] or None, chunk_elements=int or None)
        -> [A] int64: gt index, BACKGROUND or IGNORE

(each takes every keyword and uses those its rule needs), looked up by name in ASSIGNERS.
``plus_one`` is the box convention (MODEL.LEGACY_PLUS_ONE) of the IoUs; ``gt_areas`` (the
targets' BoxList.area(), in their own convention) break SSC's ties, computed from the boxes in
``plus_one``'s convention when None. The loss
calls them through :func:`assign`; nothing here reads the config.

Dense scenes: no [anchors, gts] intermediate is ever formed whole. Each assigner works on
slices of the gts (or of the anchors) of at most ``chunk_elements`` pairs (CHUNK_ELEMENTS by
default), so peak memory grows linearly in the number of gts; every per-gt and per-anchor
reduction is independent of the slicing, so the outputs are bit for bit those of the whole
matrices (tests/modeling/test_dense_assignment.py). What outlives a slice is written into a
tensor allocated once: small tensors kept per slice would split the freed large blocks, and
the heap (glibc) would then grow by a slice's worth of memory at every step.
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
# pairs (anchor, gt) formed at once: 8M float32 is 32 MB per intermediate, a few of them live
CHUNK_ELEMENTS = 1 << 23


def chunks(total, pairs_per_item, chunk_elements=None):
    """Slices covering range(total), each of at most max(1, chunk_elements // pairs_per_item) items."""
    step = max(1, (chunk_elements or CHUNK_ELEMENTS) // max(1, pairs_per_item))
    return [slice(start, min(start + step, total)) for start in range(0, total, step)]


def box_centres(boxes):
    """[N, 2] centres (x1 + x2) / 2, (y1 + y2) / 2 of xyxy boxes [N, 4]."""
    return torch.stack([(boxes[:, 2] + boxes[:, 0]) / 2.0, (boxes[:, 3] + boxes[:, 1]) / 2.0], dim=1)


def _centre_distances(anchor_centres, gt_boxes):
    """[G, A] Euclidean distances between gt centres and anchor centres (x and y terms added
    as the official [A, G, 2] sum does, so the bits are the same, without that tensor); laid out
    per gt, so that each gt's top-k runs over contiguous memory."""
    gt_centres = box_centres(gt_boxes)
    dx = gt_centres[:, None, 0] - anchor_centres[None, :, 0]
    dy = gt_centres[:, None, 1] - anchor_centres[None, :, 1]
    return (dx.square() + dy.square()).sqrt()


def _ltrb(points, boxes):
    """Distances [..., 4] from points [..., 2] to the left, top, right, bottom sides of boxes [..., 4] (broadcast)."""
    return torch.stack([points[..., 0] - boxes[..., 0], points[..., 1] - boxes[..., 1],
                        boxes[..., 2] - points[..., 0], boxes[..., 3] - points[..., 1]], dim=-1)


def _inside(points, boxes, margin=0.01):
    """Whether points [..., 2] lie inside boxes [..., 4] (broadcast) by more than ``margin``."""
    return _ltrb(points, boxes).min(dim=-1).values > margin


class ATSSSelection(NamedTuple):
    """The steps of ATSS for every gt (what tools/visualize_assignment.py draws): the candidate
    anchors [K, G] (levels one after the other, min(topk x anchors per location, level size)
    rows each), their IoUs [K, G], each gt's threshold [G] (mean + std of its candidates' IoUs)
    and which candidates are positive [K, G]."""
    candidates: torch.Tensor
    candidate_ious: torch.Tensor
    threshold: torch.Tensor
    is_pos: torch.Tensor


def _nearest_candidates(anchor_centres, gt_boxes, num_anchors_per_level, candidates_per_level):
    """[K, G] per level, the indices of the anchors whose centres are nearest each gt centre."""
    distances = _centre_distances(anchor_centres, gt_boxes)
    candidates = []
    start = 0
    for count in num_anchors_per_level:
        k = min(candidates_per_level, count)
        _, idx = distances[:, start:start + count].topk(k, dim=1, largest=False)
        candidates.append(idx.t() + start)
        start += count
    return torch.cat(candidates, dim=0)


def atss_selection(anchors, num_anchors_per_level, gt_boxes, topk, num_anchors_per_location=1,
                   plus_one=TO_REMOVE, chunk_elements=None):
    """Per level, the ``topk`` x ``num_anchors_per_location`` anchors whose centres are nearest
    each gt centre are candidates; a candidate is positive when its IoU >= mean + std of the
    gt's candidate IoUs and its centre lies inside the gt. IoUs are computed for the candidates
    only, distances for a slice of the gts at a time."""
    candidates_per_level = topk * num_anchors_per_location
    anchor_ctr = box_centres(anchors)
    num_candidates = sum(min(candidates_per_level, count) for count in num_anchors_per_level)
    candidates = anchors.new_empty((num_candidates, gt_boxes.shape[0]), dtype=torch.int64)  # [K, G]
    for part in chunks(gt_boxes.shape[0], anchors.shape[0], chunk_elements):
        candidates[:, part] = _nearest_candidates(anchor_ctr, gt_boxes[part], num_anchors_per_level,
                                                  candidates_per_level)
    candidate_ious = paired_box_iou_legacy(anchors[candidates], gt_boxes[None, :, :], plus_one)
    threshold = candidate_ious.mean(0) + candidate_ious.std(0)
    is_pos = (candidate_ious >= threshold[None, :]) & _inside(anchor_ctr[candidates], gt_boxes)
    return ATSSSelection(candidates, candidate_ious, threshold, is_pos)


def _highest_iou_gt(num_anchors, pos_anchor, pos_gt, pos_iou, num_gt):
    """[A] per anchor, among its (anchor, gt, IoU) positives the gt of highest IoU (the lowest gt
    index among equal ones), else BACKGROUND."""
    best = torch.full((num_anchors,), -INF, dtype=pos_iou.dtype, device=pos_iou.device)
    best = best.scatter_reduce(0, pos_anchor, pos_iou, reduce="amax")
    winner = pos_iou == best[pos_anchor]
    result = torch.full((num_anchors,), num_gt, dtype=torch.int64, device=pos_iou.device)
    result = result.scatter_reduce(0, pos_anchor[winner], pos_gt[winner], reduce="amin")
    return torch.where(result == num_gt, torch.full_like(result, BACKGROUND), result)


def assign_atss(*, anchors, num_anchors_per_level, gt_boxes, topk, num_anchors_per_location=1,
                fg_iou_threshold=None, bg_iou_threshold=None, plus_one=TO_REMOVE, gt_areas=None,
                chunk_elements=None):
    """Adaptive training sample selection (:func:`atss_selection`); an anchor positive for
    several gts takes the highest IoU (the lowest gt index among equal ones). The IoU
    thresholds are not used.
    """
    candidates, candidate_ious, _, is_pos = atss_selection(anchors, num_anchors_per_level, gt_boxes, topk,
                                                           num_anchors_per_location, plus_one, chunk_elements)
    gt_index = torch.arange(gt_boxes.shape[0], device=anchors.device).expand_as(candidates)
    return _highest_iou_gt(anchors.shape[0], candidates[is_pos], gt_index[is_pos], candidate_ious[is_pos],
                           gt_boxes.shape[0])


def assign_topk(*, anchors, num_anchors_per_level=None, gt_boxes, topk, num_anchors_per_location=1,
                fg_iou_threshold=None, bg_iou_threshold=None, plus_one=TO_REMOVE, gt_areas=None,
                chunk_elements=None):
    """The ``topk`` anchors of highest IoU (ties broken by centre distance) with centres inside
    the gt, over all levels at once."""
    anchor_ctr = box_centres(anchors)
    parts = chunks(gt_boxes.shape[0], anchors.shape[0], chunk_elements)
    # the distances are scaled by their largest value over all pairs (a first pass)
    largest = None
    for part in parts:
        part_largest = _centre_distances(anchor_ctr, gt_boxes[part]).max()
        largest = part_largest if largest is None else torch.maximum(largest, part_largest)
    k = min(topk, anchors.shape[0])
    num_gt = gt_boxes.shape[0]
    top = anchors.new_empty((k, num_gt), dtype=torch.int64)
    top_ious = anchors.new_empty((k, num_gt))
    top_inside = anchors.new_empty((k, num_gt), dtype=torch.bool)
    for part in parts:  # laid out [C, A] (IoU is symmetric bit for bit), so each top-k is contiguous
        ious = box_iou_legacy(gt_boxes[part], anchors, plus_one)
        distances = _centre_distances(anchor_ctr, gt_boxes[part])
        distances = distances / largest / 1000
        _, idx = (ious - distances).topk(k, dim=1)  # [C, k]
        top_ious[:, part] = ious.gather(1, idx).t()
        top[:, part] = idx = idx.t()
        top_inside[:, part] = _inside(anchor_ctr[idx], gt_boxes[part])
    gt_index = torch.arange(num_gt, device=anchors.device).expand_as(top)
    return _highest_iou_gt(anchors.shape[0], top[top_inside], gt_index[top_inside], top_ious[top_inside], num_gt)


def assign_ssc(*, anchors, num_anchors_per_level, gt_boxes, topk=None, num_anchors_per_location=1,
               fg_iou_threshold=None, bg_iou_threshold=None, plus_one=TO_REMOVE, gt_areas=None,
               chunk_elements=None):
    """FCOS's spatial and scale constraints: the anchor centre inside the gt and the gt's largest
    distance from it within the level's size range; ties go to the smallest gt (``gt_areas``,
    else the areas in the ``plus_one`` convention). A slice of the anchors at a time."""
    points = box_centres(anchors)
    sizes = torch.cat([points.new_tensor(SSC_OBJECT_SIZES[level]).expand(count, 2)
                       for level, count in enumerate(num_anchors_per_level)], dim=0)
    if gt_areas is None:
        gt_areas = (gt_boxes[:, 2] - gt_boxes[:, 0] + plus_one) * (gt_boxes[:, 3] - gt_boxes[:, 1] + plus_one)
    result = torch.empty_like(points[:, 0], dtype=torch.int64)
    for part in chunks(points.shape[0], 4 * gt_boxes.shape[0], chunk_elements):
        result[part] = _smallest_gt_in_range(points[part], sizes[part], gt_boxes, gt_areas)
    return result


def _smallest_gt_in_range(points, sizes, gt_boxes, gt_areas):
    """[N] per point, the smallest gt holding it whose largest side distance is in its size range."""
    ltrb = _ltrb(points[:, None, :], gt_boxes)  # [N, G, 4]
    inside = ltrb.min(dim=2).values > 0.01
    largest = ltrb.max(dim=2).values
    in_level = (largest >= sizes[:, [0]]) & (largest <= sizes[:, [1]])
    area = gt_areas[None].expand(points.shape[0], -1).clone()
    area[~(inside & in_level)] = INF
    min_area, index = area.min(dim=1)
    return torch.where(min_area == INF, torch.full_like(index, BACKGROUND), index)


def assign_iou(*, anchors, num_anchors_per_level=None, gt_boxes, topk=None, num_anchors_per_location=1,
               fg_iou_threshold, bg_iou_threshold, plus_one=TO_REMOVE, gt_areas=None, chunk_elements=None):
    """Max-IoU assignment (``fg_iou_threshold``/``bg_iou_threshold``, low-quality matches
    kept); positives whose anchor centre is outside their gt and anchors between the
    thresholds are ignored. The [G, A] IoUs a slice of the gts at a time."""
    matcher = Matcher(fg_iou_threshold, bg_iou_threshold, True)
    matches = matcher.match_in_chunks(
        (part.start, box_iou_legacy(gt_boxes[part], anchors, plus_one))
        for part in chunks(gt_boxes.shape[0], anchors.shape[0], chunk_elements))
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


def ignore_overlapping(gt_index, anchors, ignore_boxes, iof_threshold, plus_one=TO_REMOVE, chunk_elements=None):
    """``gt_index`` with IGNORE for every BACKGROUND anchor whose area lies more than
    ``iof_threshold`` inside an ignore region (intersection over the anchor's area: mmdetection's
    "iof"); positives of real objects keep their gt."""
    if ignore_boxes.shape[0] == 0:
        return gt_index
    candidates = (gt_index == BACKGROUND).nonzero().squeeze(1)
    iof = anchors.new_empty(candidates.shape)
    for part in chunks(candidates.shape[0], ignore_boxes.shape[0], chunk_elements):
        iof[part] = _largest_iof(anchors[candidates[part]], ignore_boxes, plus_one)
    result = gt_index.clone()
    result[candidates[iof > iof_threshold]] = IGNORE
    return result


def _largest_iof(boxes, regions, plus_one):
    """[N] per box, the largest fraction of its area inside one of the regions."""
    width = (torch.min(boxes[:, None, 2], regions[None, :, 2])
             - torch.max(boxes[:, None, 0], regions[None, :, 0]) + plus_one).clamp(min=0)
    height = (torch.min(boxes[:, None, 3], regions[None, :, 3])
              - torch.max(boxes[:, None, 1], regions[None, :, 1]) + plus_one).clamp(min=0)
    area = (boxes[:, 2] - boxes[:, 0] + plus_one) * (boxes[:, 3] - boxes[:, 1] + plus_one)
    return (width * height).amax(dim=1) / area


def assign(positive_type, *, anchors, gt_boxes, **settings):
    """ASSIGNERS[positive_type](...) with no ground truth handled: every anchor BACKGROUND."""
    if gt_boxes.shape[0] == 0:
        return torch.full((anchors.shape[0],), BACKGROUND, dtype=torch.int64, device=anchors.device)
    return ASSIGNERS[check_positive_type(positive_type)](anchors=anchors, gt_boxes=gt_boxes, **settings)
