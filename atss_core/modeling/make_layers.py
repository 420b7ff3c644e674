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


def _conv_with_norm_and_relu(conv, out_channels, use_gn, use_relu, gn_cfg):
    layers = [conv]
    if use_gn:
        layers.append(group_norm(out_channels, gn_cfg=gn_cfg))
    if use_relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers) if len(layers) > 1 else conv


def conv_with_kaiming_uniform(use_gn=False, use_relu=False, gn_cfg=None):
    """Conv (kaiming-uniform a=1 init, bias 0; no bias when followed by GN) [+ GN] [+ ReLU]."""

    def make_conv(in_channels, out_channels, kernel_size, stride=1, dilation=1):
        conv = nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                         padding=dilation * (kernel_size - 1) // 2, dilation=dilation, bias=not use_gn)
        nn.init.kaiming_uniform_(conv.weight, a=1)
        if not use_gn:
            nn.init.constant_(conv.bias, 0)
        return _conv_with_norm_and_relu(conv, out_channels, use_gn, use_relu, gn_cfg)

    return make_conv


def make_conv3x3(in_channels, out_channels, dilation=1, stride=1, use_gn=False, use_relu=False, kaiming_init=True,
                 gn_cfg=None):
    """3x3 conv (kaiming-normal fan-out init, or N(0, 0.01) without ``kaiming_init``; bias 0, none
    before GN) [+ GN] [+ ReLU], as officially."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=dilation, dilation=dilation,
                     bias=not use_gn)
    if kaiming_init:
        nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    else:
        nn.init.normal_(conv.weight, std=0.01)
    if not use_gn:
        nn.init.constant_(conv.bias, 0)
    return _conv_with_norm_and_relu(conv, out_channels, use_gn, use_relu, gn_cfg)


def make_fc(dim_in, hidden_dim, use_gn=False, gn_cfg=None):
    """Linear layer, kaiming-uniform (a=1) init (Caffe2's XavierFill), bias 0; with ``use_gn`` no
    bias and a GroupNorm after it."""
    fc = nn.Linear(dim_in, hidden_dim, bias=not use_gn)
    nn.init.kaiming_uniform_(fc.weight, a=1)
    if use_gn:
        return nn.Sequential(fc, group_norm(hidden_dim, gn_cfg=gn_cfg))
    nn.init.constant_(fc.bias, 0)
    return fc
