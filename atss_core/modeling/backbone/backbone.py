"""Backbone builders registered by MODEL.BACKBONE.CONV_BODY."""
from collections import OrderedDict

from torch import nn

from atss_core.modeling.make_layers import conv_with_kaiming_uniform
from atss_core.modeling.registry import BACKBONES

from . import fpn as fpn_module
from . import resnet


def _fpn_conv_block(cfg):
    return conv_with_kaiming_uniform(cfg.MODEL.FPN.USE_GN, cfg.MODEL.FPN.USE_RELU, gn_cfg=cfg.MODEL.GROUP_NORM)


def _with_out_channels(modules, out_channels):
    model = nn.Sequential(OrderedDict(modules))
    model.out_channels = out_channels
    return model


@BACKBONES.register("R-50-C4")
@BACKBONES.register("R-50-C5")
@BACKBONES.register("R-101-C4")
@BACKBONES.register("R-101-C5")
def build_resnet_backbone(cfg):
    """The ResNet body alone (official C4/C5 bodies; the ATSS configs use FPN bodies)."""
    return _with_out_channels([("body", resnet.ResNet(cfg))], cfg.MODEL.RESNETS.BACKBONE_OUT_CHANNELS)


@BACKBONES.register("R-50-FPN")
@BACKBONES.register("R-101-FPN")
@BACKBONES.register("R-152-FPN")
def build_resnet_fpn_backbone(cfg):
    """ResNet body + FPN over C2-C5 with a max-pooled P6 (the R-CNN pyramid P2-P6)."""
    in_channels_stage2 = cfg.MODEL.RESNETS.RES2_OUT_CHANNELS
    out_channels = cfg.MODEL.RESNETS.BACKBONE_OUT_CHANNELS
    fpn = fpn_module.FPN(
        in_channels_list=[in_channels_stage2 * factor for factor in (1, 2, 4, 8)], out_channels=out_channels,
        conv_block=_fpn_conv_block(cfg), top_blocks=fpn_module.LastLevelMaxPool())
    return _with_out_channels([("body", resnet.ResNet(cfg)), ("fpn", fpn)], out_channels)


@BACKBONES.register("R-50-FPN-RETINANET")
@BACKBONES.register("R-101-FPN-RETINANET")
def build_resnet_fpn_p3p7_backbone(cfg, body=None):
    """ResNet/ResNeXt body + FPN over C3-C5 with P6/P7 (from C5 when RETINANET.USE_C5, else from P5)."""
    body = body if body is not None else resnet.ResNet(cfg)
    in_channels_stage2 = cfg.MODEL.RESNETS.RES2_OUT_CHANNELS
    out_channels = cfg.MODEL.RESNETS.BACKBONE_OUT_CHANNELS
    in_channels_p6p7 = in_channels_stage2 * 8 if cfg.MODEL.RETINANET.USE_C5 else out_channels
    fpn = fpn_module.FPN(
        in_channels_list=[0, in_channels_stage2 * 2, in_channels_stage2 * 4, in_channels_stage2 * 8],
        out_channels=out_channels,
        conv_block=_fpn_conv_block(cfg),
        top_blocks=fpn_module.LastLevelP6P7(in_channels_p6p7, out_channels,
                                            relu_before_p7=cfg.MODEL.FPN.RELU_BEFORE_P7),
    )
    return _with_out_channels([("body", body), ("fpn", fpn)], out_channels)


@BACKBONES.register("R-18-FPN-RETINANET")
def build_resnet18_fpn_p3p7_backbone(cfg):
    """The P3-P7 backbone on the ResNet-18 stage layout (whatever MODEL.BACKBONE.CONV_BODY says)."""
    return build_resnet_fpn_p3p7_backbone(cfg, resnet.ResNet(cfg, conv_body="R-18-FPN-RETINANET"))


def build_backbone(cfg):
    return BACKBONES[cfg.MODEL.BACKBONE.CONV_BODY](cfg)
