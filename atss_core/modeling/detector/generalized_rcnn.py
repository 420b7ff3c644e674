"""GeneralizedRCNN: backbone + dense head (ATSS runs without ROI heads, MODEL.RPN_ONLY)."""
import torch
from torch import nn

from atss_core.modeling.backbone import build_backbone
from atss_core.modeling.rpn.rpn import build_rpn
from atss_core.structures.image_list import to_image_list


class GeneralizedRCNN(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.backbone = build_backbone(cfg)
        self.rpn = build_rpn(cfg, self.backbone.out_channels)
        if not cfg.MODEL.RPN_ONLY:
            raise ValueError("ROI heads are not part of atss_core: ATSS configs set MODEL.RPN_ONLY True")
        # the layout the input batch is converted to (channels_last after optimize_for_inference)
        self.input_memory_format = torch.contiguous_format

    def forward(self, images, targets=None):
        """images: ImageList or list of [C, H, W] tensors; targets: list of BoxList (training).
        Returns the dict of losses in training, the list of detections (BoxList) in eval."""
        if self.training and targets is None:
            raise ValueError("in training mode the targets (a list of BoxList) must be given")
        images = to_image_list(images)
        features = self.backbone(images.tensors.contiguous(memory_format=self.input_memory_format))
        detections, losses = self.rpn(images, features, targets)
        return losses if self.training else detections
