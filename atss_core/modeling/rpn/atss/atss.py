"""The ATSS head (classification, box regression and centerness towers), its box coder and
the module that runs them with the anchors. Submodule names follow the official checkpoints.
Classes take the config as officially (``BoxCoder(cfg)``, ``ATSSHead(cfg, in_channels)``) and
read it here, at the boundary; the computations below take plain values."""
import math

import torch
import torch.nn.functional as F
from torch import nn

from atss_core.layers import DFConv2d, Scale
from atss_core.modeling.box_coder import BBOX_XFORM_CLIP
from atss_core.modeling.registry import RPN_MODULES
from atss_core.modeling.rpn.anchor_generator import make_anchor_generator_atss, num_anchors_per_location

from .inference import make_atss_postprocessor
from .loss import make_atss_loss_evaluator

REGRESSION_TYPES = ("BOX", "POINT")
BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def check_regression_type(value, name="MODEL.ATSS.REGRESSION_TYPE"):
    if value not in REGRESSION_TYPES:
        raise ValueError("{} must be 'BOX' or 'POINT', got {!r}".format(name, value))
    return value


def regression_type_of(cfg):
    """MODEL.ATSS.REGRESSION_TYPE, checked."""
    return check_regression_type(cfg.MODEL.ATSS.REGRESSION_TYPE)


def _size_and_centre(boxes, plus_one):
    widths = boxes[:, 2] - boxes[:, 0] + plus_one
    heights = boxes[:, 3] - boxes[:, 1] + plus_one
    ctr_x = (boxes[:, 2] + boxes[:, 0]) / 2
    ctr_y = (boxes[:, 3] + boxes[:, 1]) / 2
    return widths, heights, ctr_x, ctr_y


class BoxCoder:
    """Box coding of the ATSS head (legacy +1 widths, centres at (x1 + x2) / 2; with
    MODEL.LEGACY_PLUS_ONE False, widths x2 - x1 and dw/dh clamped on both sides, as
    mmdetection's DeltaXYWHBBoxCoder).

    REGRESSION_TYPE "BOX": (dx, dy, dw, dh) deltas against the anchor, weighted (10, 10, 5, 5),
    with dw/dh clamped at log(1000 / 16) when decoding.
    REGRESSION_TYPE "POINT": distances (left, top, right, bottom) from the anchor centre, in
    units of anchor size / ``point_unit`` (ANCHOR_SIZES[0] / ANCHOR_STRIDES[0]).

    ``BoxCoder(cfg)`` as officially; ``BoxCoder(None, regression_type=..., point_unit=...,
    plus_one=...)`` without a config."""

    def __init__(self, cfg, regression_type="BOX", point_unit=8.0, plus_one=1):
        if cfg is not None:
            atss = cfg.MODEL.ATSS
            regression_type = regression_type_of(cfg)
            point_unit = float(atss.ANCHOR_SIZES[0]) / float(atss.ANCHOR_STRIDES[0])
            plus_one = 1 if cfg.MODEL.LEGACY_PLUS_ONE else 0
        self.regression_type = check_regression_type(regression_type, "regression_type")
        self.point_unit = point_unit
        self.plus_one = plus_one

    def encode(self, gt_boxes, anchors):
        """Regression targets [N, 4] of xyxy ``gt_boxes`` [N, 4] against ``anchors`` [N, 4]."""
        aw, ah, acx, acy = _size_and_centre(anchors, self.plus_one)
        if self.regression_type == "POINT":
            u = self.point_unit
            return torch.stack([u * (acx - gt_boxes[:, 0]) / aw, u * (acy - gt_boxes[:, 1]) / ah,
                                u * (gt_boxes[:, 2] - acx) / aw, u * (gt_boxes[:, 3] - acy) / ah], dim=1)
        gw, gh, gcx, gcy = _size_and_centre(gt_boxes, self.plus_one)
        wx, wy, ww, wh = BOX_WEIGHTS
        return torch.stack([wx * (gcx - acx) / aw, wy * (gcy - acy) / ah, ww * torch.log(gw / aw),
                            wh * torch.log(gh / ah)], dim=1)

    def decode(self, preds, anchors):
        """xyxy boxes [N, 4] from regression outputs ``preds`` [N, 4] and ``anchors`` [N, 4]."""
        anchors = anchors.to(preds.dtype)
        aw, ah, acx, acy = _size_and_centre(anchors, self.plus_one)
        if self.regression_type == "POINT":
            u = self.point_unit
            return torch.stack([acx - preds[:, 0] / u * aw, acy - preds[:, 1] / u * ah,
                                acx + preds[:, 2] / u * aw, acy + preds[:, 3] / u * ah], dim=1)
        wx, wy, ww, wh = BOX_WEIGHTS
        dx, dy = preds[:, 0] / wx, preds[:, 1] / wy
        low = None if self.plus_one else -BBOX_XFORM_CLIP
        dw = torch.clamp(preds[:, 2] / ww, min=low, max=BBOX_XFORM_CLIP)
        dh = torch.clamp(preds[:, 3] / wh, min=low, max=BBOX_XFORM_CLIP)
        ctr_x, ctr_y = dx * aw + acx, dy * ah + acy
        w, h = torch.exp(dw) * aw, torch.exp(dh) * ah
        if not self.plus_one:
            return torch.stack([ctr_x - 0.5 * w, ctr_y - 0.5 * h, ctr_x + 0.5 * w, ctr_y + 0.5 * h], dim=1)
        return torch.stack([ctr_x - 0.5 * (w - 1), ctr_y - 0.5 * (h - 1), ctr_x + 0.5 * (w - 1),
                            ctr_y + 0.5 * (h - 1)], dim=1)


class ATSSHead(nn.Module):
    """Per FPN level: cls logits [N, A*(C-1), H, W], box regression [N, A*4, H, W]
    (scaled by a learnable per-level Scale) and centerness [N, A, H, W]."""

    def __init__(self, cfg, in_channels):
        super().__init__()
        atss = cfg.MODEL.ATSS
        num_classes = atss.NUM_CLASSES - 1
        num_anchors = num_anchors_per_location(cfg)
        self.regression_type = regression_type_of(cfg)
        if self.regression_type == "POINT" and num_anchors != 1:
            raise ValueError("MODEL.ATSS.REGRESSION_TYPE 'POINT' needs one anchor per location, got {}".format(
                num_anchors))

        def tower():
            layers = []
            for i in range(atss.NUM_CONVS):
                if atss.USE_DCN_IN_TOWER and i == atss.NUM_CONVS - 1:
                    conv = DFConv2d(in_channels, in_channels, with_modulated_dcn=True, kernel_size=3, stride=1,
                                    bias=True)
                else:
                    conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1, bias=True)
                layers += [conv, nn.GroupNorm(32, in_channels), nn.ReLU()]
            return nn.Sequential(*layers)

        self.cls_tower = tower()
        self.bbox_tower = tower()
        self.cls_logits = nn.Conv2d(in_channels, num_anchors * num_classes, kernel_size=3, stride=1, padding=1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, kernel_size=3, stride=1, padding=1)
        self.centerness = nn.Conv2d(in_channels, num_anchors * 1, kernel_size=3, stride=1, padding=1)

        # official initialisation: every nn.Conv2d (the DCN offset convs included) N(0, 0.01), bias 0
        for module in (self.cls_tower, self.bbox_tower, self.cls_logits, self.bbox_pred, self.centerness):
            for layer in module.modules():
                if isinstance(layer, nn.Conv2d):
                    nn.init.normal_(layer.weight, std=0.01)
                    nn.init.constant_(layer.bias, 0)
        self.reset_cls_bias(atss.PRIOR_PROB)
        if self.regression_type == "POINT":
            # distances start at 4 units (half of the first level's anchor): the relu that
            # follows would otherwise begin at its kink
            nn.init.constant_(self.bbox_pred.bias, 4.0)
        self.scales = nn.ModuleList([Scale(init_value=1.0) for _ in range(5)])

    def reset_cls_bias(self, prior_prob):
        """Bias so that every class starts at probability ``prior_prob`` (focal-loss init)."""
        nn.init.constant_(self.cls_logits.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, features):
        logits, bbox_reg, centerness = [], [], []
        for level, feature in enumerate(features):
            cls_feature = self.cls_tower(feature)
            box_feature = self.bbox_tower(feature)
            logits.append(self.cls_logits(cls_feature))
            box = self.scales[level](self.bbox_pred(box_feature))
            if self.regression_type == "POINT":
                box = F.relu(box)  # distances are non-negative
            bbox_reg.append(box)
            centerness.append(self.centerness(box_feature))
        return logits, bbox_reg, centerness


class ATSSModule(nn.Module):
    """Runs the head over the FPN levels and hands its outputs and the anchors to the
    loss (training) or to the post-processor (inference)."""

    def __init__(self, cfg, in_channels):
        super().__init__()
        self.head = ATSSHead(cfg, in_channels)
        self.anchor_generator = make_anchor_generator_atss(cfg)
        self.box_coder = BoxCoder(cfg)
        self.loss_evaluator = make_atss_loss_evaluator(cfg, self.box_coder)
        self.box_selector_test = make_atss_postprocessor(cfg, self.box_coder)

    def forward(self, images, features, targets=None):
        # reduced-precision heads (autocast) hand float32 to the losses and box decoding
        box_cls, box_regression, centerness = ([t.float() for t in outputs] for outputs in self.head(features))
        anchors = self.anchor_generator(images, features)
        if self.training:
            loss_cls, loss_reg, loss_centerness = self.loss_evaluator(box_cls, box_regression, centerness, targets,
                                                                      anchors)
            return None, {"loss_cls": loss_cls, "loss_reg": loss_reg, "loss_centerness": loss_centerness}
        return self.box_selector_test(box_cls, box_regression, centerness, anchors), {}

    def loss_counts(self, images, feature_shapes, targets):
        """The loss's normalisers of these images (ATSSLossComputation.batch_counts) from the
        levels' (H, W) alone: no head outputs needed."""
        return self.loss_evaluator.batch_counts(targets, self.anchors_for_shapes(images, feature_shapes))

    def anchors_for_shapes(self, images, feature_shapes):
        """The anchors of these images from the levels' (H, W) alone (no feature maps)."""
        shapes_only = [torch.empty((0, 0) + tuple(shape), device="meta") for shape in feature_shapes]
        return self.anchor_generator(images, shapes_only)


@RPN_MODULES.register("ATSS")
def build_atss(cfg, in_channels):
    return ATSSModule(cfg, in_channels)
