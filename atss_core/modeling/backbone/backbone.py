"""Backbone builders registered by MODEL.BACKBONE.CONV_BODY."""
from collections import OrderedDict

from torch import nn

from atss_core.modeling.make_layers import conv_with_kaiming_uniform
from atss_core.modeling.registry import BACKBONES

from . import fpn as fpn_module
from . import resnet


@BACKBONES.register("R-18-FPN-RETINANET")
@BACKBONES.register("R-50-FPN-RETINANET")
@BACKBONES.register("R-101-FPN-RETINANET")
def build_resnet_fpn_p3p7_backbone(cfg):
    """ResNet/ResNeXt body + FPN over C3-C5 with P6/P7 (from C5 when RETINANET.USE_C5, else from P5)."""
    body = resnet.ResNet(cfg)
    in_channels_stage2 = cfg.MODEL.RESNETS.RES2_OUT_CHANNELS
    out_channels = cfg.MODEL.RESNETS.BACKBONE_OUT_CHANNELS
    in_channels_p6p7 = in_channels_stage2 * 8 if cfg.MODEL.RETINANET.USE_C5 else out_channels
    fpn = fpn_module.FPN(
        in_channels_list=[0, in_channels_stage2 * 2, in_channels_stage2 * 4, in_channels_stage2 * 8],
        out_channels=out_channels,
        conv_block=conv_with_kaiming_uniform(cfg.MODEL.FPN.USE_GN, cfg.MODEL.FPN.USE_RELU,
                                             gn_cfg=cfg.MODEL.GROUP_NORM),
        top_blocks=fpn_module.LastLevelP6P7(in_channels_p6p7, out_channels,
                                            relu_before_p7=cfg.MODEL.FPN.RELU_BEFORE_P7),
    )
    model = nn.Sequential(OrderedDict([("body", body), ("fpn", fpn)]))
    model.out_channels = out_channels
    return model


def build_backbone(cfg):
    return BACKBONES[cfg.MODEL.BACKBONE.CONV_BODY](cfg)
