"""ResNet / ResNeXt bodies (MSRA/Caffe2 layout) with frozen BN or GroupNorm and
optional deformable 3x3 convs, with the official module names (stem, layer1..layer4)."""
import functools
import logging
from collections import namedtuple

import torch.nn.functional as F
from torch import nn

from atss_core.layers import DFConv2d, FrozenBatchNorm2d
from atss_core.modeling.make_layers import group_norm
from atss_core.modeling.registry import RESNET_STEM_FUNCS, RESNET_TRANSFORMATION_FUNCS

# index: stage number (1 = res2 ... 4 = res5); return_features: output goes to the FPN
StageSpec = namedtuple("StageSpec", ["index", "block_count", "return_features"])

STAGE_SPECS = {
    "R-50-FPN-RETINANET": (StageSpec(1, 3, True), StageSpec(2, 4, True), StageSpec(3, 6, True),
                           StageSpec(4, 3, True)),
    "R-101-FPN-RETINANET": (StageSpec(1, 3, True), StageSpec(2, 4, True), StageSpec(3, 23, True),
                            StageSpec(4, 3, True)),
}
# ResNet-18 layout (BasicBlocks via MODEL.RESNETS.TRANS_FUNC, RES2_OUT_CHANNELS 64): small models
# trained from scratch, e.g. the CPU quickstart
STAGE_SPECS["R-18-FPN-RETINANET"] = (StageSpec(1, 2, True), StageSpec(2, 2, True), StageSpec(3, 2, True),
                                     StageSpec(4, 2, True))
STAGE_SPECS["R-50-FPN"] = STAGE_SPECS["R-50-FPN-RETINANET"]
STAGE_SPECS["R-101-FPN"] = STAGE_SPECS["R-101-FPN-RETINANET"]
STAGE_SPECS["R-152-FPN"] = (StageSpec(1, 3, True), StageSpec(2, 8, True), StageSpec(3, 36, True),
                            StageSpec(4, 3, True))
# the official bodies without FPN: C4 (res2-res4, the last one returned) and C5 (res2-res5)
STAGE_SPECS["R-50-C4"] = (StageSpec(1, 3, False), StageSpec(2, 4, False), StageSpec(3, 6, True))
STAGE_SPECS["R-50-C5"] = (StageSpec(1, 3, False), StageSpec(2, 4, False), StageSpec(3, 6, False),
                          StageSpec(4, 3, True))
STAGE_SPECS["R-101-C4"] = (StageSpec(1, 3, False), StageSpec(2, 4, False), StageSpec(3, 23, True))
STAGE_SPECS["R-101-C5"] = (StageSpec(1, 3, False), StageSpec(2, 4, False), StageSpec(3, 23, False),
                           StageSpec(4, 3, True))


def _kaiming_init(conv):
    nn.init.kaiming_uniform_(conv.weight, a=1)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (grouped, optionally deformable) -> 1x1 with a projection shortcut when shapes change."""

    def __init__(self, in_channels, bottleneck_channels, out_channels, num_groups, stride_in_1x1, stride, dilation,
                 norm_func, dcn_config):
        super().__init__()
        self.downsample = None
        if in_channels != out_channels:
            down_stride = stride if dilation == 1 else 1
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=down_stride, bias=False),
                norm_func(out_channels),
            )
            _kaiming_init(self.downsample[0])
        if dilation > 1:
            stride = 1  # dilated stages keep the resolution
        # MSRA ResNets stride in the 1x1 conv, ResNeXt (and torchvision) in the 3x3
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)

        self.conv1 = nn.Conv2d(in_channels, bottleneck_channels, kernel_size=1, stride=stride_1x1, bias=False)
        self.bn1 = norm_func(bottleneck_channels)
        if dcn_config.get("stage_with_dcn", False):
            self.conv2 = DFConv2d(bottleneck_channels, bottleneck_channels,
                                  with_modulated_dcn=dcn_config.get("with_modulated_dcn", False), kernel_size=3,
                                  stride=stride_3x3, groups=num_groups, dilation=dilation,
                                  deformable_groups=dcn_config.get("deformable_groups", 1), bias=False)
        else:
            self.conv2 = nn.Conv2d(bottleneck_channels, bottleneck_channels, kernel_size=3, stride=stride_3x3,
                                   padding=dilation, bias=False, groups=num_groups, dilation=dilation)
            _kaiming_init(self.conv2)
        self.bn2 = norm_func(bottleneck_channels)
        self.conv3 = nn.Conv2d(bottleneck_channels, out_channels, kernel_size=1, bias=False)
        self.bn3 = norm_func(out_channels)
        _kaiming_init(self.conv1)
        _kaiming_init(self.conv3)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu_(self.bn1(self.conv1(x)))
        out = F.relu_(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu_(out + identity)


class BasicBlock(nn.Module):
    """Two 3x3 convs (ResNet-18/34) with a projection shortcut when shapes change; the second
    conv may be deformable. Accepts the Bottleneck arguments (bottleneck width and
    stride_in_1x1 do not apply)."""

    def __init__(self, in_channels, bottleneck_channels, out_channels, num_groups, stride_in_1x1, stride, dilation,
                 norm_func, dcn_config):
        super().__init__()
        if num_groups != 1:
            raise ValueError("BasicBlock ResNets have no grouped convolutions: set MODEL.RESNETS.NUM_GROUPS 1")
        self.downsample = None
        if in_channels != out_channels or stride != 1:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                norm_func(out_channels),
            )
            _kaiming_init(self.downsample[0])
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=dilation,
                               dilation=dilation, bias=False)
        self.bn1 = norm_func(out_channels)
        if dcn_config.get("stage_with_dcn", False):
            self.conv2 = DFConv2d(out_channels, out_channels,
                                  with_modulated_dcn=dcn_config.get("with_modulated_dcn", False), kernel_size=3,
                                  dilation=dilation, deformable_groups=dcn_config.get("deformable_groups", 1),
                                  bias=False)
        else:
            self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=dilation, dilation=dilation,
                                   bias=False)
            _kaiming_init(self.conv2)
        self.bn2 = norm_func(out_channels)
        _kaiming_init(self.conv1)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu_(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu_(out + identity)


class BaseStem(nn.Module):
    """7x7 stride-2 conv, norm, ReLU, 3x3 stride-2 max pool."""

    def __init__(self, cfg, norm_func):
        super().__init__()
        out_channels = cfg.MODEL.RESNETS.STEM_OUT_CHANNELS
        self.conv1 = nn.Conv2d(3, out_channels, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_func(out_channels)
        _kaiming_init(self.conv1)

    def forward(self, x):
        x = F.relu_(self.bn1(self.conv1(x)))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


def _gn_from(gn_cfg):
    return lambda channels: group_norm(channels, gn_cfg=gn_cfg)


# The official block and stem classes (MODEL.RESNETS.TRANS_FUNC / STEM_FUNC names). A GN block
# takes the MODEL.GROUP_NORM node as ``gn_cfg`` (the default config's when None, as officially).
class BottleneckWithFixedBatchNorm(Bottleneck):
    def __init__(self, in_channels, bottleneck_channels, out_channels, num_groups=1, stride_in_1x1=True, stride=1,
                 dilation=1, dcn_config=None):
        super().__init__(in_channels, bottleneck_channels, out_channels, num_groups, stride_in_1x1, stride, dilation,
                         norm_func=FrozenBatchNorm2d, dcn_config=dcn_config or {})


class BottleneckWithGN(Bottleneck):
    def __init__(self, in_channels, bottleneck_channels, out_channels, num_groups=1, stride_in_1x1=True, stride=1,
                 dilation=1, dcn_config=None, gn_cfg=None):
        super().__init__(in_channels, bottleneck_channels, out_channels, num_groups, stride_in_1x1, stride, dilation,
                         norm_func=_gn_from(gn_cfg), dcn_config=dcn_config or {})


class StemWithFixedBatchNorm(BaseStem):
    def __init__(self, cfg):
        super().__init__(cfg, norm_func=FrozenBatchNorm2d)


class StemWithGN(BaseStem):
    def __init__(self, cfg):
        super().__init__(cfg, norm_func=_gn_from(cfg.MODEL.GROUP_NORM))


RESNET_STEM_FUNCS.register("StemWithFixedBatchNorm")(StemWithFixedBatchNorm)
RESNET_STEM_FUNCS.register("StemWithGN")(StemWithGN)


@RESNET_TRANSFORMATION_FUNCS.register("BottleneckWithFixedBatchNorm")
def bottleneck_with_fixed_batch_norm(cfg):
    return BottleneckWithFixedBatchNorm


@RESNET_TRANSFORMATION_FUNCS.register("BottleneckWithGN")
def bottleneck_with_gn(cfg):
    return functools.partial(BottleneckWithGN, gn_cfg=cfg.MODEL.GROUP_NORM)


@RESNET_TRANSFORMATION_FUNCS.register("BasicBlockWithFixedBatchNorm")
def basic_block_with_fixed_batch_norm(cfg):
    return functools.partial(BasicBlock, norm_func=FrozenBatchNorm2d)


@RESNET_TRANSFORMATION_FUNCS.register("BasicBlockWithGN")
def basic_block_with_gn(cfg):
    return functools.partial(BasicBlock, norm_func=_gn_from(cfg.MODEL.GROUP_NORM))


def _make_stage(block, in_channels, bottleneck_channels, out_channels, block_count, num_groups, stride_in_1x1,
                first_stride, dilation, dcn_config):
    blocks = []
    stride = first_stride
    for _ in range(block_count):
        blocks.append(block(in_channels, bottleneck_channels, out_channels, num_groups, stride_in_1x1, stride,
                            dilation=dilation, dcn_config=dcn_config))
        stride = 1
        in_channels = out_channels
    return nn.Sequential(*blocks)


class ResNet(nn.Module):
    """Returns the features of the stages whose spec has return_features (C2..C5 for FPN bodies).
    The stage layout is STAGE_SPECS[``conv_body``], MODEL.BACKBONE.CONV_BODY by default."""

    def __init__(self, cfg, conv_body=None):
        super().__init__()
        conv_body = conv_body or cfg.MODEL.BACKBONE.CONV_BODY
        if conv_body not in STAGE_SPECS:
            raise KeyError("no ResNet stage layout for MODEL.BACKBONE.CONV_BODY {!r}; known: {}".format(
                conv_body, ", ".join(sorted(STAGE_SPECS))))
        resnets = cfg.MODEL.RESNETS
        if resnets.RES5_DILATION != 1:
            logging.getLogger(__name__).warning(
                "MODEL.RESNETS.RES5_DILATION %s is ignored: as in the official code it only concerns the C4 "
                "head, and the FPN body's last stage is never dilated", resnets.RES5_DILATION)
        stage_specs = STAGE_SPECS[conv_body]
        self.stem = RESNET_STEM_FUNCS[resnets.STEM_FUNC](cfg)
        block = RESNET_TRANSFORMATION_FUNCS[resnets.TRANS_FUNC](cfg)

        in_channels = resnets.STEM_OUT_CHANNELS
        stage2_bottleneck_channels = resnets.NUM_GROUPS * resnets.WIDTH_PER_GROUP
        self.stages = []
        self.return_features = {}
        for spec in stage_specs:
            name = "layer" + str(spec.index)
            factor = 2 ** (spec.index - 1)
            out_channels = resnets.RES2_OUT_CHANNELS * factor
            module = _make_stage(
                block, in_channels, stage2_bottleneck_channels * factor, out_channels, spec.block_count,
                resnets.NUM_GROUPS, resnets.STRIDE_IN_1X1, first_stride=int(spec.index > 1) + 1,
                dilation=1,  # officially RES5_DILATION only concerns the C4 head, never the body
                dcn_config={
                    "stage_with_dcn": resnets.STAGE_WITH_DCN[spec.index - 1],
                    "with_modulated_dcn": resnets.WITH_MODULATED_DCN,
                    "deformable_groups": resnets.DEFORMABLE_GROUPS,
                },
            )
            in_channels = out_channels
            self.add_module(name, module)
            self.stages.append(name)
            self.return_features[name] = spec.return_features
        self._freeze_backbone(cfg.MODEL.BACKBONE.FREEZE_CONV_BODY_AT)

    def _freeze_backbone(self, freeze_at):
        """Stops gradients of the stem (index 0) and of the stages below ``freeze_at``."""
        for stage_index in range(max(freeze_at, 0)):
            module = self.stem if stage_index == 0 else getattr(self, "layer" + str(stage_index))
            for p in module.parameters():
                p.requires_grad = False

    def forward(self, x):
        outputs = []
        x = self.stem(x)
        for name in self.stages:
            x = getattr(self, name)(x)
            if self.return_features[name]:
                outputs.append(x)
        return outputs
