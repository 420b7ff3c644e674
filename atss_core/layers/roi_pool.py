"""ROIPool (Fast R-CNN): max pooling of each roi into a fixed grid of bins."""
import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.utils import _pair

from ._ext import _C, as_float32_if_half


class _ROIPoolFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, rois, output_size, spatial_scale):
        output, argmax = _C.roi_pool_forward(input, rois, spatial_scale, output_size[0], output_size[1])
        ctx.save_for_backward(rois, argmax)
        ctx.input_shape = input.shape
        ctx.mark_non_differentiable(argmax)
        return output

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        rois, argmax = ctx.saved_tensors
        batch, channels, height, width = ctx.input_shape
        grad_input = _C.roi_pool_backward(grad_output, argmax, rois, batch, channels, height, width)
        return grad_input, None, None, None


def roi_pool(input, rois, output_size, spatial_scale):
    """Max-pools each roi ([K, 5] = batch index, x1, y1, x2, y2) of ``input`` ([N, C, H, W])."""
    dtype = input.dtype
    input, rois = as_float32_if_half(input, rois)
    return _ROIPoolFunction.apply(input, rois, _pair(output_size), float(spatial_scale)).to(dtype)


class ROIPool(nn.Module):
    def __init__(self, output_size, spatial_scale):
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = spatial_scale

    def forward(self, input, rois):
        return roi_pool(input, rois, self.output_size, self.spatial_scale)

    def extra_repr(self):
        return "output_size={}, spatial_scale={}".format(self.output_size, self.spatial_scale)
