"""GeneralizedRCNN: backbone + dense head (ATSS runs without ROI heads, MODEL.RPN_ONLY)."""
import copy

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
        self._feature_shapes = {}  # padded input (H, W) -> the levels' (H, W)

    def forward(self, images, targets=None):
        """images: ImageList or list of [C, H, W] tensors; targets: list of BoxList (training).
        Returns the dict of losses in training, the list of detections (BoxList) in eval."""
        if self.training and targets is None:
            raise ValueError("in training mode the targets (a list of BoxList) must be given")
        images = to_image_list(images)
        features = self.backbone(images.tensors.contiguous(memory_format=self.input_memory_format))
        detections, losses = self.rpn(images, features, targets)
        return losses if self.training else detections

    def feature_shapes(self, height, width):
        """The (H, W) of each feature level for a padded input of ``height`` x ``width``: a
        shape-only run of the backbone on the meta device, or, where one of its ops has no meta
        kernel (the compiled deformable convolution), a one-image run without gradients. Cached."""
        key = (int(height), int(width))
        if key not in self._feature_shapes:
            try:
                if not hasattr(self, "_meta_backbone"):
                    self._meta_backbone = [copy.deepcopy(self.backbone).to("meta")]  # a list: not a submodule
                features = self._meta_backbone[0](torch.empty(1, 3, *key, device="meta"))
            except (NotImplementedError, RuntimeError):
                parameter = next(self.backbone.parameters())
                was_training = self.backbone.training
                self.backbone.eval()  # no norm statistics move
                with torch.no_grad():
                    features = self.backbone(parameter.new_zeros(1, 3, *key))
                self.backbone.train(was_training)
            self._feature_shapes[key] = [tuple(f.shape[-2:]) for f in features]
        return self._feature_shapes[key]

    def loss_counts(self, images, targets):
        """What the loss normalises by for these images and targets (ATSSModule.loss_counts),
        without running the network."""
        images = to_image_list(images)
        return self.rpn.loss_counts(images, self.feature_shapes(*images.tensors.shape[-2:]), targets)
