"""Chooses the dense head ("rpn") from the config; the official single-conv RPN head."""
import torch.nn.functional as F
from torch import nn

from atss_core.modeling.registry import RPN_HEADS, RPN_MODULES

from .atss import atss  # noqa: F401  (registers "ATSS")

# the official config enables a head with a MODEL.<flag>; its RPN_MODULES name
HEAD_FLAGS = {"ATSS_ON": "ATSS", "FCOS_ON": "FCOS", "RETINANET_ON": "RetinaNet"}


@RPN_HEADS.register("SingleConvRPNHead")
class RPNHead(nn.Module):
    """The official RPN head (the ATSS model does not use it): a shared 3x3 conv + ReLU, then
    per level objectness logits [N, A, H, W] and box deltas [N, A * 4, H, W] (1x1 convs)."""

    def __init__(self, cfg, in_channels, num_anchors):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1)
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, kernel_size=1, stride=1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, kernel_size=1, stride=1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0)

    def forward(self, x):
        logits, bbox_reg = [], []
        for feature in x:
            shared = F.relu(self.conv(feature))
            logits.append(self.cls_logits(shared))
            bbox_reg.append(self.bbox_pred(shared))
        return logits, bbox_reg


def build_rpn(cfg, in_channels):
    enabled = [flag for flag in HEAD_FLAGS if getattr(cfg.MODEL, flag)]
    if len(enabled) != 1:
        raise ValueError("exactly one of {} must be True; got {}".format(
            ", ".join("MODEL." + flag for flag in HEAD_FLAGS),
            ", ".join("{}={}".format(flag, getattr(cfg.MODEL, flag)) for flag in HEAD_FLAGS)))
    return RPN_MODULES[HEAD_FLAGS[enabled[0]]](cfg, in_channels)
