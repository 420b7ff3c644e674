"""Inference-only rewrites of a built detector that change its outputs by float rounding only.

- Folding: a FrozenBatchNorm2d right after a convolution is an affine map per output channel,
  so it goes into that convolution's weight and bias (one memory pass less per conv).
- channels_last: oneDNN's CPU convolutions run faster on NHWC tensors.

A folded model has other state-dict entries (no norm buffers, conv biases): it is for
evaluation only; checkpoints are written from the unfolded training model.
"""
import torch
from torch import nn

from atss_core.layers import FrozenBatchNorm2d
from atss_core.layers.dcn import DeformConv, ModulatedDeformConv
from atss_core.layers.misc import DFConv2d

from .backbone.resnet import BaseStem, BasicBlock, Bottleneck

# (conv, norm) attribute pairs that the blocks' forward passes apply back to back
_CONV_NORM_PAIRS = (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3"))


def _fold_into(conv, norm):
    """conv followed by the frozen norm -> conv alone (in place)."""
    if isinstance(conv, DFConv2d):
        conv = conv.conv
    if not isinstance(conv, (nn.Conv2d, DeformConv, ModulatedDeformConv)):
        return False
    with torch.no_grad():
        scale = norm.weight * (norm.running_var + norm.eps).rsqrt()
        shift = norm.bias - norm.running_mean * scale
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1).to(conv.weight.dtype))
        if conv.bias is None:
            conv.bias = nn.Parameter(shift.to(conv.weight.dtype), requires_grad=False)
        else:
            conv.bias.copy_(conv.bias * scale + shift)
    return True


def fold_frozen_batchnorm(model):
    """Folds every FrozenBatchNorm2d of the ResNet stem, blocks and shortcuts into the
    convolution before it, replacing the norm by an identity. Returns how many were folded."""
    folded = 0
    for module in list(model.modules()):
        if not isinstance(module, (Bottleneck, BasicBlock, BaseStem)):
            continue
        for conv_name, norm_name in _CONV_NORM_PAIRS:
            conv, norm = getattr(module, conv_name, None), getattr(module, norm_name, None)
            if isinstance(norm, FrozenBatchNorm2d) and _fold_into(conv, norm):
                setattr(module, norm_name, nn.Identity())
                folded += 1
        shortcut = getattr(module, "downsample", None)
        if shortcut is not None and isinstance(shortcut[1], FrozenBatchNorm2d) and _fold_into(shortcut[0], shortcut[1]):
            shortcut[1] = nn.Identity()
            folded += 1
    return folded


def optimize_for_inference(model, channels_last=True):
    """Folds the frozen norms and (optionally) moves the model to channels_last; the model
    converts its input batch to the same layout. For evaluation only. Returns the model."""
    model.eval()
    fold_frozen_batchnorm(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        model.input_memory_format = torch.channels_last
    return model
