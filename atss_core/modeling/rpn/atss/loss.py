"""ATSS training targets and losses.

Assignment (modeling/rpn/atss/assigners.py, one plain function per MODEL.ATSS.POSITIVE_TYPE)
gives every anchor the index of its ground truth, BACKGROUND or IGNORE; the losses are sigmoid
focal loss (classification), GIoU weighted by the centerness targets (regression) and BCE
(centerness), normalised by the number of positives and the centerness-target sum reduced over
all processes. ``ATSSLossComputation(cfg, box_coder)`` reads the config, as officially, into an
ATSSLossSettings; everything below takes plain values.
"""
from dataclasses import dataclass

import torch
from torch import nn

from atss_core.layers import SigmoidFocalLoss
from atss_core.modeling.matcher import Matcher
from atss_core.modeling.rpn.anchor_generator import num_anchors_per_location
from atss_core.modeling.rpn.utils import concat_box_prediction_layers
from atss_core.structures.boxlist_ops import cat_boxlist, split_ignore_regions
from atss_core.utils.comm import get_world_size, reduce_sum

from .assigners import (ASSIGNERS, BACKGROUND, IGNORE, INF, assign, box_centres,  # noqa: F401
                        check_positive_type, ignore_overlapping)

get_num_gpus = get_world_size  # the official name: the number of processes


@dataclass(frozen=True)
class ATSSLossSettings:
    """What the loss reads from MODEL.ATSS (the config's boundary)."""
    positive_type: str = "ATSS"
    topk: int = 9
    num_anchors_per_location: int = 1
    fg_iou_threshold: float = 0.5
    bg_iou_threshold: float = 0.4
    focal_gamma: float = 2.0
    focal_alpha: float = 0.25
    reg_loss_weight: float = 2.0
    ignore_iof_threshold: float = 0.5  # anchors over ignore regions (targets with an "ignore" field)

    @classmethod
    def from_config(cls, cfg):
        atss = cfg.MODEL.ATSS
        return cls(positive_type=atss.POSITIVE_TYPE, topk=atss.TOPK,
                   num_anchors_per_location=num_anchors_per_location(cfg),
                   fg_iou_threshold=atss.FG_IOU_THRESHOLD, bg_iou_threshold=atss.BG_IOU_THRESHOLD,
                   focal_gamma=atss.LOSS_GAMMA, focal_alpha=atss.LOSS_ALPHA, reg_loss_weight=atss.REG_LOSS_WEIGHT,
                   ignore_iof_threshold=atss.IGNORE_IOF_THRESHOLD)


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


def centerness_from_boxes(gt_boxes, anchors):
    """[P] centerness of each anchor centre within its (decoded) xyxy gt box [P, 4]."""
    ctr = box_centres(anchors)
    left_right = torch.stack([ctr[:, 0] - gt_boxes[:, 0], gt_boxes[:, 2] - ctr[:, 0]], dim=1)
    top_bottom = torch.stack([ctr[:, 1] - gt_boxes[:, 1], gt_boxes[:, 3] - ctr[:, 1]], dim=1)
    return torch.sqrt((left_right.min(dim=-1).values / left_right.max(dim=-1).values)
                      * (top_bottom.min(dim=-1).values / top_bottom.max(dim=-1).values))


class ATSSLossComputation:
    """Assigns anchors to gts (``ASSIGNERS[positive_type]``) and computes the three losses.

    ``ATSSLossComputation(cfg, box_coder)`` as officially; without a config,
    ``ATSSLossComputation(None, box_coder, settings=ATSSLossSettings(...))``."""

    def __init__(self, cfg, box_coder, settings=None):
        if cfg is not None:
            settings = ATSSLossSettings.from_config(cfg)
        elif settings is None:
            raise ValueError("ATSSLossComputation needs a config or an ATSSLossSettings")
        check_positive_type(settings.positive_type)
        self.cfg = cfg
        self.settings = settings
        self.positive_type = settings.positive_type
        self.reg_loss_weight = settings.reg_loss_weight
        focal_gamma, focal_alpha = settings.focal_gamma, settings.focal_alpha
        self.cls_loss_func = SigmoidFocalLoss(focal_gamma, focal_alpha)
        self.centerness_loss_func = nn.BCEWithLogitsLoss(reduction="sum")
        # the official attribute; the IoU assigner builds its own from the same thresholds
        self.matcher = Matcher(settings.fg_iou_threshold, settings.bg_iou_threshold, True)
        self.box_coder = box_coder
        self.plus_one = box_coder.plus_one  # the assigners' IoU follows the box convention (MODEL.LEGACY_PLUS_ONE)
        # (positives, centerness-target sum) per process over a whole batch, set while a batch runs
        # as several forward passes (SOLVER.ACCUMULATE_STEPS); None: normalised by this call's own
        self.batch_normalizers = None

    def assign(self, anchors_per_level, targets_per_image):
        """[A] gt index (among the target's objects) / BACKGROUND / IGNORE for one image (anchors
        as a list of per-level BoxLists)."""
        objects, ignore_regions = split_ignore_regions(targets_per_image)
        return self._assign(cat_boxlist(anchors_per_level).bbox, [len(a) for a in anchors_per_level], objects,
                            ignore_regions)

    def _assign(self, anchors, counts, targets_per_image, ignore_regions=None):
        s = self.settings
        gt_index = assign(s.positive_type, anchors=anchors, num_anchors_per_level=counts,
                          gt_boxes=targets_per_image.convert("xyxy").bbox, topk=s.topk,
                          num_anchors_per_location=s.num_anchors_per_location, fg_iou_threshold=s.fg_iou_threshold,
                          bg_iou_threshold=s.bg_iou_threshold, plus_one=self.plus_one,
                          gt_areas=targets_per_image.area())
        if ignore_regions is not None:
            gt_index = ignore_overlapping(gt_index, anchors, ignore_regions.convert("xyxy").bbox,
                                          s.ignore_iof_threshold, self.plus_one)
        return gt_index

    def _targets(self, targets, anchors):
        """Per image: the anchors [A, 4] (levels concatenated), labels [A] (0 background, -1
        ignore, else class) and the matched gt boxes [A, 4]. A target's ignore regions (its
        "ignore" field, MODEL.ATSS.IGNORE_CROWD) are no objects: they only turn background
        anchors over them into ignored ones."""
        anchor_boxes_per_image, labels, matched_boxes = [], [], []
        for targets_per_image, anchors_per_image in zip(targets, anchors):
            targets_per_image, ignore_regions = split_ignore_regions(targets_per_image)
            anchor_boxes = cat_boxlist(anchors_per_image).bbox
            anchor_boxes_per_image.append(anchor_boxes)
            gt_index = self._assign(anchor_boxes, [len(a) for a in anchors_per_image], targets_per_image,
                                    ignore_regions)
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
            matched_boxes.append(gt_boxes[matched])
        return anchor_boxes_per_image, labels, matched_boxes

    def prepare_targets(self, targets, anchors):
        """Per image: labels [A] (0 background, -1 ignore, else class) and regression targets [A, 4]."""
        anchor_boxes, labels, matched_boxes = self._targets(targets, anchors)
        return labels, [self.box_coder.encode(m, a) for m, a in zip(matched_boxes, anchor_boxes)]

    def compute_centerness_targets(self, reg_targets, anchors):
        """Centerness targets [P] of regression targets [P, 4] against their anchors [P, 4]."""
        return centerness_from_boxes(self.box_coder.decode(reg_targets, anchors), anchors)

    def GIoULoss(self, pred, target, anchor, weight=None):  # noqa: N802 (the official name)
        """GIoU loss of regression outputs ``pred`` against regression targets ``target``, both
        decoded against ``anchor``."""
        return giou_loss(self.box_coder.decode(pred.view(-1, 4), anchor.view(-1, 4)),
                         self.box_coder.decode(target.view(-1, 4), anchor.view(-1, 4)), weight=weight)

    def _positive_centerness_targets(self, matched_boxes, pos_inds, anchors_flat):
        """The decoded regression targets and centerness targets of the positive anchors."""
        # the official loss encodes the matched gts and decodes them back, twice: once, here
        reg_targets_flat = self.box_coder.encode(torch.cat(matched_boxes, dim=0)[pos_inds], anchors_flat)
        target_boxes = self.box_coder.decode(reg_targets_flat, anchors_flat)
        return target_boxes, centerness_from_boxes(target_boxes, anchors_flat)

    def batch_counts(self, targets, anchors):
        """(positives, centerness-target sum) of these images, what the loss normalises by
        (before the average over processes); they depend on the anchors and targets only."""
        anchor_boxes, labels, matched_boxes = self._targets(targets, anchors)
        pos_inds = torch.nonzero(torch.cat(labels, dim=0) > 0).squeeze(1)
        if pos_inds.numel() == 0:
            return 0.0, 0.0
        _, centerness_targets = self._positive_centerness_targets(matched_boxes, pos_inds,
                                                                  torch.cat(anchor_boxes, dim=0)[pos_inds])
        return float(pos_inds.numel()), float(centerness_targets.sum())

    def __call__(self, box_cls, box_regression, centerness, targets, anchors):
        anchor_boxes, labels, matched_boxes = self._targets(targets, anchors)
        num_images = len(labels)
        box_cls_flat, box_regression_flat = concat_box_prediction_layers(box_cls, box_regression)
        centerness_flat = torch.cat([c.permute(0, 2, 3, 1).reshape(num_images, -1, 1) for c in centerness],
                                    dim=1).reshape(-1)
        labels_flat = torch.cat(labels, dim=0)
        anchors_flat = torch.cat(anchor_boxes, dim=0)

        pos_inds = torch.nonzero(labels_flat > 0).squeeze(1)
        num_processes = get_world_size()
        given = self.batch_normalizers
        if given is None:
            total_num_pos = reduce_sum(pos_inds.new_tensor([pos_inds.numel()], dtype=torch.float32)).item()
        else:
            total_num_pos = given[0]
        num_pos_avg = max(total_num_pos / float(num_processes), 1.0)
        cls_loss = self.cls_loss_func(box_cls_flat, labels_flat.int()) / num_pos_avg

        box_regression_flat = box_regression_flat[pos_inds]
        anchors_flat = anchors_flat[pos_inds]
        centerness_flat = centerness_flat[pos_inds]
        if pos_inds.numel() > 0:
            target_boxes, centerness_targets = self._positive_centerness_targets(matched_boxes, pos_inds, anchors_flat)
            if given is None:
                centerness_sum_avg = reduce_sum(centerness_targets.sum()).item() / float(num_processes)
            else:
                centerness_sum_avg = given[1] / float(num_processes)
            reg_loss = giou_loss(self.box_coder.decode(box_regression_flat, anchors_flat), target_boxes,
                                 weight=centerness_targets) / centerness_sum_avg
            centerness_loss = self.centerness_loss_func(centerness_flat, centerness_targets) / num_pos_avg
        else:
            if given is None:
                reduce_sum(centerness_flat.new_tensor([0.0]))  # keep the collective calls of all processes aligned
            reg_loss = box_regression_flat.sum()
            centerness_loss = centerness_flat.sum()
        return cls_loss, reg_loss * self.reg_loss_weight, centerness_loss


def make_atss_loss_evaluator(cfg, box_coder):
    return ATSSLossComputation(cfg, box_coder)
