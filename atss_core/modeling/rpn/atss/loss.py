"""ATSS training targets and losses.

Assignment (one function per MODEL.ATSS.POSITIVE_TYPE, looked up in ASSIGNERS, each
vectorised over anchors and gts) gives every anchor the index of its ground truth, BACKGROUND
or IGNORE; the losses are sigmoid focal loss (classification), GIoU weighted by the
centerness targets (regression) and BCE (centerness), normalised by the number of positives
and the centerness-target sum reduced over all processes.
"""
import torch
from torch import nn

from atss_core.layers import SigmoidFocalLoss
from atss_core.modeling.matcher import Matcher
from atss_core.modeling.rpn.utils import concat_box_prediction_layers
from atss_core.structures.bounding_box import TO_REMOVE
from atss_core.structures.boxlist_ops import box_iou_legacy, cat_boxlist, paired_box_iou_legacy
from atss_core.utils.comm import get_world_size, reduce_sum

INF = 100000000
BACKGROUND = -1
IGNORE = -2
# SSC: the object sizes (max regression distance) each level is responsible for
SSC_OBJECT_SIZES = ((-1, 64), (64, 128), (128, 256), (256, 512), (512, INF))


def _centres(boxes):
    return torch.stack([(boxes[:, 2] + boxes[:, 0]) / 2.0, (boxes[:, 3] + boxes[:, 1]) / 2.0], dim=1)


def _centre_distances(anchor_centres, gt_boxes):
    """[A, G] Euclidean distances between anchor centres and gt centres (x and y terms added
    as the official [A, G, 2] sum does, so the bits are the same, without that tensor)."""
    gt_centres = _centres(gt_boxes)
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


def assign_atss(anchors, num_anchors_per_level, gt_boxes, topk, plus_one=TO_REMOVE):
    """Adaptive training sample selection.

    Per level, the ``topk`` anchors whose centres are nearest each gt centre are candidates;
    a candidate is positive when its IoU >= mean + std of the gt's candidate IoUs and its
    centre lies inside the gt; an anchor positive for several gts takes the highest IoU (the
    lowest gt index among equal ones). IoUs are computed for the candidates only, with the
    +1 box convention unless ``plus_one`` is 0 (MODEL.LEGACY_PLUS_ONE False, as mmdetection).
    anchors [A, 4] (levels concatenated), gt_boxes [G, 4] -> [A] gt index or BACKGROUND.
    """
    anchor_ctr = _centres(anchors)
    distances = _centre_distances(anchor_ctr, gt_boxes)
    candidates = []
    start = 0
    for count in num_anchors_per_level:
        k = min(topk, count)
        _, idx = distances[start:start + count].topk(k, dim=0, largest=False)
        candidates.append(idx + start)
        start += count
    candidates = torch.cat(candidates, dim=0)  # [K, G]
    candidate_ious = paired_box_iou_legacy(anchors[candidates], gt_boxes[None, :, :], plus_one)
    threshold = candidate_ious.mean(0) + candidate_ious.std(0)
    is_pos = (candidate_ious >= threshold[None, :]) & _inside(anchor_ctr[candidates], gt_boxes)
    gt_index = torch.arange(gt_boxes.shape[0], device=anchors.device).expand_as(candidates)
    pos_anchor, pos_gt, pos_iou = candidates[is_pos], gt_index[is_pos], candidate_ious[is_pos]
    best = torch.full((anchors.shape[0],), -INF, dtype=pos_iou.dtype, device=anchors.device)
    best = best.scatter_reduce(0, pos_anchor, pos_iou, reduce="amax")
    winner = pos_iou == best[pos_anchor]
    no_gt = gt_boxes.shape[0]
    result = torch.full((anchors.shape[0],), no_gt, dtype=torch.int64, device=anchors.device)
    result = result.scatter_reduce(0, pos_anchor[winner], pos_gt[winner], reduce="amin")
    return torch.where(result == no_gt, torch.full_like(result, BACKGROUND), result)


def assign_topk(anchors, gt_boxes, topk, plus_one=TO_REMOVE):
    """The ``topk`` anchors of highest IoU (ties broken by centre distance) with centres inside the gt."""
    ious = box_iou_legacy(anchors, gt_boxes, plus_one)
    anchor_ctr = _centres(anchors)
    distances = _centre_distances(anchor_ctr, gt_boxes)
    distances = distances / distances.max() / 1000
    _, idx = (ious - distances).topk(min(topk, anchors.shape[0]), dim=0)  # [k, G]
    inside = _inside(anchor_ctr[idx], gt_boxes)
    is_pos = torch.zeros_like(ious, dtype=torch.bool)
    gt_index = torch.arange(gt_boxes.shape[0], device=anchors.device).expand_as(idx)
    is_pos[idx[inside], gt_index[inside]] = True
    return _best_positive_gt(ious, is_pos)


def assign_ssc(anchors, num_anchors_per_level, gt_boxes, gt_areas):
    """FCOS's spatial and scale constraints: the anchor centre inside the gt and the gt's largest
    distance from it within the level's size range; ties go to the smallest gt."""
    points = _centres(anchors)
    sizes = torch.cat([points.new_tensor(SSC_OBJECT_SIZES[level]).expand(count, 2)
                       for level, count in enumerate(num_anchors_per_level)], dim=0)
    ltrb = _ltrb(points[:, None, :], gt_boxes)  # [A, G, 4]
    inside = ltrb.min(dim=2).values > 0.01
    largest = ltrb.max(dim=2).values
    in_level = (largest >= sizes[:, [0]]) & (largest <= sizes[:, [1]])
    area = gt_areas[None].expand(points.shape[0], -1).clone()
    area[~(inside & in_level)] = INF
    min_area, index = area.min(dim=1)
    return torch.where(min_area == INF, torch.full_like(index, BACKGROUND), index)


def assign_iou(anchors, gt_boxes, matcher, plus_one=TO_REMOVE):
    """Max-IoU assignment (FG/BG_IOU_THRESHOLD, low-quality matches kept); positives whose anchor
    centre is outside their gt and anchors between the thresholds are ignored."""
    matches = matcher(box_iou_legacy(gt_boxes, anchors, plus_one))
    gt_index = matches.clone()
    gt_index[matches == Matcher.BETWEEN_THRESHOLDS] = IGNORE
    gt_index[matches == Matcher.BELOW_LOW_THRESHOLD] = BACKGROUND
    pos_idx = (gt_index >= 0).nonzero().squeeze(1)
    inside = _inside(_centres(anchors[pos_idx]), gt_boxes[gt_index[pos_idx]])
    gt_index[pos_idx[~inside]] = IGNORE
    return gt_index


def giou_loss(pred_boxes, target_boxes, weight=None):
    """Sum of 1 - GIoU between decoded xyxy boxes (continuous areas, as the official loss);
    weighted by ``weight`` when it has positive mass."""
    px1, py1 = pred_boxes[:, 0], pred_boxes[:, 1]
    px2 = torch.max(px1, pred_boxes[:, 2])
    py2 = torch.max(py1, pred_boxes[:, 3])
    tx1, ty1, tx2, ty2 = target_boxes.unbind(dim=1)
    pred_area = (px2 - px1) * (py2 - py1)
    target_area = (tx2 - tx1) * (ty2 - ty1)
    iw = (torch.min(px2, tx2) - torch.max(px1, tx1)).clamp(min=0)
    ih = (torch.min(py2, ty2) - torch.max(py1, ty1)).clamp(min=0)
    inter = iw * ih
    enclosing = (torch.max(px2, tx2) - torch.min(px1, tx1)) * (torch.max(py2, ty2) - torch.min(py1, ty1)) + 1e-7
    union = pred_area + target_area - inter + 1e-7
    gious = inter / union - (enclosing - union) / enclosing
    losses = 1 - gious
    if weight is not None and weight.sum() > 0:
        return (losses * weight).sum()
    return losses.sum()


# MODEL.ATSS.POSITIVE_TYPE -> assigner, all with one signature:
# (anchors [A, 4], num_anchors_per_level, targets_per_image, gt_boxes [G, 4] xyxy, settings) -> [A] gt index,
# where settings carries topk, num_anchors_per_location, matcher and plus_one (an ATSSLossComputation does)
ASSIGNERS = {
    "ATSS": lambda anchors, counts, targets, gt_boxes, s: assign_atss(
        anchors, counts, gt_boxes, s.topk * s.num_anchors_per_location, s.plus_one),
    "SSC": lambda anchors, counts, targets, gt_boxes, s: assign_ssc(anchors, counts, gt_boxes, targets.area()),
    "IoU": lambda anchors, counts, targets, gt_boxes, s: assign_iou(anchors, gt_boxes, s.matcher, s.plus_one),
    "TOPK": lambda anchors, counts, targets, gt_boxes, s: assign_topk(anchors, gt_boxes, s.topk, s.plus_one),
}


class ATSSLossComputation:
    """Assigns anchors to gts with ``ASSIGNERS[positive_type]`` and computes the three losses.
    Keyword-only, so that like-typed settings (gamma/alpha, the IoU thresholds) cannot be swapped."""

    def __init__(self, *, positive_type, topk, num_anchors_per_location, fg_iou_threshold, bg_iou_threshold,
                 focal_gamma, focal_alpha, reg_loss_weight, box_coder):
        if positive_type not in ASSIGNERS:
            raise ValueError("MODEL.ATSS.POSITIVE_TYPE must be one of {}; got {!r}".format(
                ", ".join(ASSIGNERS), positive_type))
        self.positive_type = positive_type
        self.topk = topk
        self.num_anchors_per_location = num_anchors_per_location
        self.reg_loss_weight = reg_loss_weight
        self.cls_loss_func = SigmoidFocalLoss(focal_gamma, focal_alpha)
        self.centerness_loss_func = nn.BCEWithLogitsLoss(reduction="sum")
        self.matcher = Matcher(fg_iou_threshold, bg_iou_threshold, True)
        self.box_coder = box_coder
        self.plus_one = box_coder.plus_one  # the assigners' IoU follows the box convention (MODEL.LEGACY_PLUS_ONE)

    def assign(self, anchors_per_level, targets_per_image):
        """[A] gt index / BACKGROUND / IGNORE for one image (anchors as a list of per-level BoxLists)."""
        return self._assign(cat_boxlist(anchors_per_level).bbox, [len(a) for a in anchors_per_level],
                            targets_per_image)

    def _assign(self, anchors, counts, targets_per_image):
        gt_boxes = targets_per_image.convert("xyxy").bbox
        if gt_boxes.shape[0] == 0:
            return torch.full((anchors.shape[0],), BACKGROUND, dtype=torch.int64, device=anchors.device)
        return ASSIGNERS[self.positive_type](anchors, counts, targets_per_image, gt_boxes, self)

    def prepare_targets(self, targets, anchors):
        """Per image: labels [A] (0 background, -1 ignore, else class) and regression targets [A, 4]."""
        labels, reg_targets = [], []
        for targets_per_image, anchors_per_image in zip(targets, anchors):
            anchor_boxes = cat_boxlist(anchors_per_image).bbox
            gt_index = self._assign(anchor_boxes, [len(a) for a in anchors_per_image], targets_per_image)
            gt_labels = targets_per_image.get_field("labels")
            gt_boxes = targets_per_image.convert("xyxy").bbox
            if gt_boxes.shape[0] == 0:  # no objects: every anchor is background, regression unused
                gt_labels = gt_labels.new_zeros(1)
                gt_boxes = anchor_boxes.new_tensor([[0.0, 0.0, 1.0, 1.0]])
            matched = gt_index.clamp(min=0)
            labels_per_image = gt_labels[matched].clone()
            labels_per_image[gt_index == BACKGROUND] = 0
            labels_per_image[gt_index == IGNORE] = -1
            labels.append(labels_per_image)
            reg_targets.append(self.box_coder.encode(gt_boxes[matched], anchor_boxes))
        return labels, reg_targets

    def compute_centerness_targets(self, reg_targets, anchors):
        gts = self.box_coder.decode(reg_targets, anchors)
        ctr = _centres(anchors)
        left_right = torch.stack([ctr[:, 0] - gts[:, 0], gts[:, 2] - ctr[:, 0]], dim=1)
        top_bottom = torch.stack([ctr[:, 1] - gts[:, 1], gts[:, 3] - ctr[:, 1]], dim=1)
        return torch.sqrt((left_right.min(dim=-1).values / left_right.max(dim=-1).values)
                          * (top_bottom.min(dim=-1).values / top_bottom.max(dim=-1).values))

    def __call__(self, box_cls, box_regression, centerness, targets, anchors):
        labels, reg_targets = self.prepare_targets(targets, anchors)
        num_images = len(labels)
        box_cls_flat, box_regression_flat = concat_box_prediction_layers(box_cls, box_regression)
        centerness_flat = torch.cat([c.permute(0, 2, 3, 1).reshape(num_images, -1, 1) for c in centerness],
                                    dim=1).reshape(-1)
        labels_flat = torch.cat(labels, dim=0)
        reg_targets_flat = torch.cat(reg_targets, dim=0)
        anchors_flat = torch.cat([cat_boxlist(a).bbox for a in anchors], dim=0)

        pos_inds = torch.nonzero(labels_flat > 0).squeeze(1)
        num_processes = get_world_size()
        total_num_pos = reduce_sum(pos_inds.new_tensor([pos_inds.numel()], dtype=torch.float32)).item()
        num_pos_avg = max(total_num_pos / float(num_processes), 1.0)
        cls_loss = self.cls_loss_func(box_cls_flat, labels_flat.int()) / num_pos_avg

        box_regression_flat = box_regression_flat[pos_inds]
        reg_targets_flat = reg_targets_flat[pos_inds]
        anchors_flat = anchors_flat[pos_inds]
        centerness_flat = centerness_flat[pos_inds]
        if pos_inds.numel() > 0:
            centerness_targets = self.compute_centerness_targets(reg_targets_flat, anchors_flat)
            centerness_sum_avg = reduce_sum(centerness_targets.sum()).item() / float(num_processes)
            reg_loss = giou_loss(self.box_coder.decode(box_regression_flat, anchors_flat),
                                 self.box_coder.decode(reg_targets_flat, anchors_flat),
                                 weight=centerness_targets) / centerness_sum_avg
            centerness_loss = self.centerness_loss_func(centerness_flat, centerness_targets) / num_pos_avg
        else:
            reduce_sum(centerness_flat.new_tensor([0.0]))  # keep the collective calls of all processes aligned
            reg_loss = box_regression_flat.sum()
            centerness_loss = centerness_flat.sum()
        return cls_loss, reg_loss * self.reg_loss_weight, centerness_loss


def make_atss_loss_evaluator(cfg, box_coder):
    """The one place that reads the loss settings from the config (MODEL.ATSS.*)."""
    atss = cfg.MODEL.ATSS
    return ATSSLossComputation(
        positive_type=atss.POSITIVE_TYPE, topk=atss.TOPK,
        num_anchors_per_location=len(atss.ASPECT_RATIOS) * atss.SCALES_PER_OCTAVE,
        fg_iou_threshold=atss.FG_IOU_THRESHOLD, bg_iou_threshold=atss.BG_IOU_THRESHOLD,
        focal_gamma=atss.LOSS_GAMMA, focal_alpha=atss.LOSS_ALPHA, reg_loss_weight=atss.REG_LOSS_WEIGHT,
        box_coder=box_coder,
    )
