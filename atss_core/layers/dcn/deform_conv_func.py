"""Autograd functions of deformable convolution v1 (offsets) and v2 (offsets + mask)."""
import torch
from torch.autograd.function import once_differentiable
from torch.nn.modules.utils import _pair

from .._ext import _C, as_float32_if_half


class _DeformConvFunction(torch.autograd.Function):
    """One function for both versions: ``mask`` is None for v1."""

    @staticmethod
    def forward(ctx, input, offset, mask, weight, bias, stride, padding, dilation, groups, deformable_groups):
        ctx.conv_args = (stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], groups, deformable_groups)
        ctx.save_for_backward(input, offset, mask, weight, bias)
        return _C.deform_conv_forward(input, weight, offset, mask, bias, *ctx.conv_args)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        input, offset, mask, weight, bias = ctx.saved_tensors
        grad_input, grad_weight, grad_offset, grad_mask, grad_bias = _C.deform_conv_backward(
            grad_output, input, weight, offset, mask, bias, *ctx.conv_args
        )
        return grad_input, grad_offset, grad_mask, grad_weight, grad_bias, None, None, None, None, None


def _run(input, offset, mask, weight, bias, stride, padding, dilation, groups, deformable_groups):
    dtype = input.dtype
    input, offset, mask, weight, bias = as_float32_if_half(input, offset, mask, weight, bias)
    output = _DeformConvFunction.apply(
        input, offset, mask, weight, bias, _pair(stride), _pair(padding), _pair(dilation), int(groups),
        int(deformable_groups),
    )
    return output.to(dtype)


def deform_conv(input, offset, weight, stride=1, padding=0, dilation=1, groups=1, deformable_groups=1, bias=None):
    """Deformable convolution v1.

    input [N, C, H, W]; offset [N, 2 * deformable_groups * kh * kw, out_h, out_w] with
    (dy, dx) pairs per kernel tap; weight [O, C / groups, kh, kw]; bias [O] or None.
    """
    return _run(input, offset, None, weight, bias, stride, padding, dilation, groups, deformable_groups)


def modulated_deform_conv(input, offset, mask, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                          deformable_groups=1):
    """Modulated deformable convolution (DCNv2): as :func:`deform_conv`, each sample also
    scaled by ``mask`` [N, deformable_groups * kh * kw, out_h, out_w]."""
    return _run(input, offset, mask, weight, bias, stride, padding, dilation, groups, deformable_groups)


class DeformConvFunction:
    """The official entry ``DeformConvFunction.apply(input, offset, weight, stride, padding,
    dilation, groups, deformable_groups, im2col_step)``; ``im2col_step`` (a batching detail of
    the official kernel) is accepted and not needed."""

    @staticmethod
    def apply(input, offset, weight, stride=1, padding=0, dilation=1, groups=1, deformable_groups=1, im2col_step=64):
        return deform_conv(input, offset, weight, stride, padding, dilation, groups, deformable_groups)


class ModulatedDeformConvFunction:
    """The official entry ``ModulatedDeformConvFunction.apply(input, offset, mask, weight, bias,
    stride, padding, dilation, groups, deformable_groups)``."""

    @staticmethod
    def apply(input, offset, mask, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, deformable_groups=1):
        return modulated_deform_conv(input, offset, mask, weight, bias, stride, padding, dilation, groups,
                                     deformable_groups)
