"""Feature pyramid network with the extra P6/P7 levels of RetinaNet / ATSS."""
import torch.nn.functional as F
from torch import nn


class FPN(nn.Module):
    """Top-down pathway with lateral 1x1 (``fpn_inner{i}``) and output 3x3 (``fpn_layer{i}``) convs.

    ``in_channels_list`` has one entry per body stage; a 0 skips that stage (C2 for P3-P7),
    keeping the official 1-based module names (fpn_inner2 is C3's lateral)."""

    def __init__(self, in_channels_list, out_channels, conv_block, top_blocks=None):
        super().__init__()
        self.inner_blocks = []
        self.layer_blocks = []
        for idx, in_channels in enumerate(in_channels_list, 1):
            if in_channels == 0:
                continue
            inner_name, layer_name = "fpn_inner{}".format(idx), "fpn_layer{}".format(idx)
            self.add_module(inner_name, conv_block(in_channels, out_channels, 1))
            self.add_module(layer_name, conv_block(out_channels, out_channels, 3, 1))
            self.inner_blocks.append(inner_name)
            self.layer_blocks.append(layer_name)
        self.top_blocks = top_blocks

    def forward(self, features):
        """features: the body's outputs, finest first; returns the pyramid, finest first
        ((P3, ..., P7) with LastLevelP6P7 over C3-C5)."""
        used = features[len(features) - len(self.inner_blocks):]
        last_inner = getattr(self, self.inner_blocks[-1])(used[-1])
        results = [getattr(self, self.layer_blocks[-1])(last_inner)]
        for feature, inner_name, layer_name in zip(used[:-1][::-1], self.inner_blocks[:-1][::-1],
                                                   self.layer_blocks[:-1][::-1]):
            lateral = getattr(self, inner_name)(feature)
            top_down = F.interpolate(last_inner, size=lateral.shape[-2:], mode="nearest")
            last_inner = lateral + top_down
            results.insert(0, getattr(self, layer_name)(last_inner))
        if isinstance(self.top_blocks, LastLevelMaxPool):
            results.extend(self.top_blocks(results[-1]))
        elif self.top_blocks is not None:
            results.extend(self.top_blocks(features[-1], results[-1]))
        return tuple(results)


class LastLevelP6P7(nn.Module):
    """P6 = 3x3/2 conv of C5 (or of P5 when the channel counts match), P7 = 3x3/2 conv of ReLU(P6)
    (of P6 itself without ``relu_before_p7``, as mmdetection)."""

    def __init__(self, in_channels, out_channels, relu_before_p7=True):
        super().__init__()
        self.p6 = nn.Conv2d(in_channels, out_channels, 3, 2, 1)
        self.p7 = nn.Conv2d(out_channels, out_channels, 3, 2, 1)
        for module in (self.p6, self.p7):
            nn.init.kaiming_uniform_(module.weight, a=1)
            nn.init.constant_(module.bias, 0)
        self.use_p5 = in_channels == out_channels
        self.relu_before_p7 = relu_before_p7

    def forward(self, c5, p5):
        p6 = self.p6(p5 if self.use_p5 else c5)
        p7 = self.p7(F.relu(p6) if self.relu_before_p7 else p6)
        return [p6, p7]


class LastLevelMaxPool(nn.Module):
    """P6 as a 1x1 stride-2 max pool of P5 (the R-CNN pyramid's top level)."""

    def forward(self, x):
        return [F.max_pool2d(x, 1, 2, 0)]
