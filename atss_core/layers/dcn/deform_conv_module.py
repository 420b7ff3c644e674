"""Deformable convolution modules with the official parameter names (weight, bias,
conv_offset_mask), so their state dicts match maskrcnn-benchmark's."""
import math

import torch
from torch import nn
from torch.nn.modules.utils import _pair

from .deform_conv_func import deform_conv, modulated_deform_conv


class _DeformConvBase(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, deformable_groups,
                 bias):
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                "in_channels ({}) and out_channels ({}) must be divisible by groups ({})".format(
                    in_channels, out_channels, groups))
        if in_channels % deformable_groups:
            raise ValueError("in_channels ({}) must be divisible by deformable_groups ({})".format(
                in_channels, deformable_groups))
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.deformable_groups = deformable_groups
        self.with_bias = bias
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        bound = 1.0 / math.sqrt(fan_in)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def _conv_kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups,
                    deformable_groups=self.deformable_groups)

    def extra_repr(self):
        return ("{in_channels}, {out_channels}, kernel_size={kernel_size}, stride={stride}, padding={padding}, "
                "dilation={dilation}, groups={groups}, deformable_groups={deformable_groups}, bias={with_bias}"
                ).format(**self.__dict__)


class DeformConv(_DeformConvBase):
    """Deformable convolution v1: ``forward(input, offset)``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 deformable_groups=1, bias=False):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         deformable_groups, bias)

    def forward(self, input, offset):
        return deform_conv(input, offset, self.weight, bias=self.bias, **self._conv_kwargs())


class ModulatedDeformConv(_DeformConvBase):
    """Deformable convolution v2: ``forward(input, offset, mask)``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 deformable_groups=1, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         deformable_groups, bias)

    def forward(self, input, offset, mask):
        return modulated_deform_conv(input, offset, mask, self.weight, self.bias, **self._conv_kwargs())


class ModulatedDeformConvPack(ModulatedDeformConv):
    """DCNv2 that predicts its own offsets and mask with a zero-initialised conv
    (``conv_offset_mask``), so it starts out as a plain convolution."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 deformable_groups=1, bias=True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                         deformable_groups, bias)
        taps = self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset_mask = nn.Conv2d(
            in_channels, deformable_groups * 3 * taps, kernel_size=self.kernel_size, stride=self.stride,
            padding=self.padding, dilation=self.dilation, bias=True)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def forward(self, input):
        offset_y, offset_x, mask = torch.chunk(self.conv_offset_mask(input), 3, dim=1)
        offset = torch.cat((offset_y, offset_x), dim=1)
        return modulated_deform_conv(input, offset, mask.sigmoid(), self.weight, self.bias, **self._conv_kwargs())
