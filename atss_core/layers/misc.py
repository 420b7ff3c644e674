"""Small layer wrappers used by the backbone and the head. The official Conv2d,
ConvTranspose2d, BatchNorm2d and interpolate wrapped torch's for empty batches, which torch
handles itself now: they are torch's own here."""
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.utils import _pair

from .dcn import DeformConv, ModulatedDeformConv


Conv2d = nn.Conv2d
ConvTranspose2d = nn.ConvTranspose2d
BatchNorm2d = nn.BatchNorm2d
interpolate = F.interpolate


class DFConv2d(nn.Module):
    """Deformable conv whose offsets (and, for DCNv2, mask) come from a conv on the same input,
    initialised as officially (kaiming-uniform, a=1; bias 0). Submodules ``offset`` and ``conv`` carry the official names.
    Padding keeps the spatial size for stride 1 ("same" padding), as officially, which computes it
    whatever ``padding`` says; here a ``padding`` other than that is refused."""

    def __init__(self, in_channels, out_channels, with_modulated_dcn=True, kernel_size=3, stride=1, groups=1,
                 padding=None, dilation=1, deformable_groups=1, bias=False):
        super().__init__()
        kernel_size = _pair(kernel_size)
        stride = _pair(stride)
        dilation = _pair(dilation)
        same = tuple(d * (k - 1) // 2 for d, k in zip(dilation, kernel_size))
        if padding is not None and _pair(padding) != same:
            raise ValueError("DFConv2d pads to keep the size ({} for kernel {} and dilation {}), got padding={}".format(
                same, kernel_size, dilation, padding))
        padding = same
        taps = kernel_size[0] * kernel_size[1]
        self.with_modulated_dcn = with_modulated_dcn
        self.deformable_groups = deformable_groups
        self.taps = taps
        offset_channels = deformable_groups * taps * (3 if with_modulated_dcn else 2)
        self.offset = nn.Conv2d(in_channels, offset_channels, kernel_size=kernel_size, stride=stride,
                                padding=padding, groups=1, dilation=dilation)
        nn.init.kaiming_uniform_(self.offset.weight, a=1)
        nn.init.zeros_(self.offset.bias)
        conv_class = ModulatedDeformConv if with_modulated_dcn else DeformConv
        self.conv = conv_class(in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=padding,
                               dilation=dilation, groups=groups, deformable_groups=deformable_groups, bias=bias)

    def forward(self, x):
        if not self.with_modulated_dcn:
            return self.conv(x, self.offset(x))
        offset_mask = self.offset(x)
        split = 2 * self.deformable_groups * self.taps
        offset = offset_mask[:, :split]
        mask = offset_mask[:, split:].sigmoid()
        return self.conv(x, offset, mask)
