"""The ATSS head (classification, box regression and centerness towers) and the module
that runs it with its anchors. Submodule names follow the official checkpoints."""
import math

import torch.nn.functional as F
from torch import nn

from atss_core.layers import DFConv2d, Scale
from atss_core.modeling.box_coder import BoxCoder
from atss_core.modeling.registry import RPN_HEADS
from atss_core.modeling.rpn.anchor_generator import make_anchor_generator_atss

from .inference import make_atss_postprocessor
from .loss import make_atss_loss_evaluator


class ATSSHead(nn.Module):
    """Per FPN level: cls logits [N, A*(C-1), H, W], box regression [N, A*4, H, W]
    (scaled by a learnable per-level Scale) and centerness [N, A, H, W]."""

    def __init__(self, cfg, in_channels):
        super().__init__()
        atss = cfg.MODEL.ATSS
        num_classes = atss.NUM_CLASSES - 1
        num_anchors = len(atss.ASPECT_RATIOS) * atss.SCALES_PER_OCTAVE
        self.regression_type = atss.REGRESSION_TYPE
        if self.regression_type not in ("BOX", "POINT"):
            raise ValueError("MODEL.ATSS.REGRESSION_TYPE must be 'BOX' or 'POINT', got {!r}".format(
                self.regression_type))
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


@RPN_HEADS.register("ATSS")
def build_atss(cfg, in_channels):
    return ATSSModule(cfg, in_channels)
