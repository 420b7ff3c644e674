"""Conv / GroupNorm builders shared by the backbone and the heads."""
from torch import nn

from atss_core.config import cfg as _default_cfg


def get_group_gn(dim, dim_per_gp, num_groups):
    """Number of GroupNorm groups for ``dim`` channels (exactly one of the two knobs is set)."""
    if dim_per_gp > 0:
        if dim % dim_per_gp:
            raise ValueError("GroupNorm: {} channels are not divisible by DIM_PER_GP={}".format(dim, dim_per_gp))
        return dim // dim_per_gp
    if dim % num_groups:
        raise ValueError("GroupNorm: {} channels are not divisible by NUM_GROUPS={}".format(dim, num_groups))
    return num_groups


def group_norm(out_channels, affine=True, divisor=1, gn_cfg=None):
    gn_cfg = gn_cfg if gn_cfg is not None else _default_cfg.MODEL.GROUP_NORM
    out_channels = out_channels // divisor
    dim_per_gp = gn_cfg.DIM_PER_GP // divisor
    num_groups = gn_cfg.NUM_GROUPS // divisor
    return nn.GroupNorm(get_group_gn(out_channels, dim_per_gp, num_groups), out_channels, gn_cfg.EPSILON, affine)


def conv_with_kaiming_uniform(use_gn=False, use_relu=False, gn_cfg=None):
    """Conv (kaiming-uniform a=1 init, bias 0; no bias when followed by GN) [+ GN] [+ ReLU]."""

    def make_conv(in_channels, out_channels, kernel_size, stride=1, dilation=1):
        conv = nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                         padding=dilation * (kernel_size - 1) // 2, dilation=dilation, bias=not use_gn)
        nn.init.kaiming_uniform_(conv.weight, a=1)
        if not use_gn:
            nn.init.constant_(conv.bias, 0)
        layers = [conv]
        if use_gn:
            layers.append(group_norm(out_channels, gn_cfg=gn_cfg))
        if use_relu:
            layers.append(nn.ReLU(inplace=True))
        return nn.Sequential(*layers) if len(layers) > 1 else conv

    return make_conv
