"""ROIAlign (Mask R-CNN) with the legacy, aligned=False sampling of maskrcnn-benchmark."""
import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.utils import _pair

from ._ext import _C, as_float32_if_half


class _ROIAlignFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, rois, output_size, spatial_scale, sampling_ratio):
        ctx.save_for_backward(rois)
        ctx.output_size = output_size
        ctx.spatial_scale = spatial_scale
        ctx.sampling_ratio = sampling_ratio
        ctx.input_shape = input.shape
        return _C.roi_align_forward(input, rois, spatial_scale, output_size[0], output_size[1], sampling_ratio)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (rois,) = ctx.saved_tensors
        batch, channels, height, width = ctx.input_shape
        grad_input = _C.roi_align_backward(
            grad_output, rois, ctx.spatial_scale, ctx.output_size[0], ctx.output_size[1],
            batch, channels, height, width, ctx.sampling_ratio,
        )
        return grad_input, None, None, None, None


def roi_align(input, rois, output_size, spatial_scale, sampling_ratio):
    """Pools each roi of ``rois`` ([K, 5] = batch index, x1, y1, x2, y2 in image pixels)
    from ``input`` ([N, C, H, W]) into ``output_size`` bins: returns [K, C, oh, ow]."""
    dtype = input.dtype
    input, rois = as_float32_if_half(input, rois)
    output = _ROIAlignFunction.apply(input, rois, _pair(output_size), float(spatial_scale), int(sampling_ratio))
    return output.to(dtype)


class ROIAlign(nn.Module):
    def __init__(self, output_size, spatial_scale, sampling_ratio):
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio

    def forward(self, input, rois):
        return roi_align(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio)

    def extra_repr(self):
        return "output_size={}, spatial_scale={}, sampling_ratio={}".format(
            self.output_size, self.spatial_scale, self.sampling_ratio
        )
