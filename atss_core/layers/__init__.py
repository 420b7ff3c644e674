"""Layers of atss_core: Python wrappers over the compiled ops of atss_core._C."""
from .batch_norm import FrozenBatchNorm2d
from .dcn import DeformConv, ModulatedDeformConv, ModulatedDeformConvPack, deform_conv, modulated_deform_conv
from .misc import DFConv2d
from .nms import ml_nms, nms
from .roi_align import ROIAlign, roi_align
from .roi_pool import ROIPool, roi_pool
from .scale import Scale
from .sigmoid_focal_loss import SigmoidFocalLoss, sigmoid_focal_loss

__all__ = [
    "nms", "ml_nms", "ROIAlign", "roi_align", "ROIPool", "roi_pool", "SigmoidFocalLoss", "sigmoid_focal_loss",
    "DeformConv", "ModulatedDeformConv", "ModulatedDeformConvPack", "deform_conv", "modulated_deform_conv",
    "DFConv2d", "FrozenBatchNorm2d", "Scale",
]
