"""FrozenBatchNorm2d: batch norm with fixed statistics and affine parameters (buffers, not parameters)."""
import torch
from torch import nn


class FrozenBatchNorm2d(nn.Module):
    """y = (x - running_mean) / sqrt(running_var + eps) * weight + bias with everything frozen.

    Like the official layer, the four tensors are buffers (never trained) and, as in the
    Caffe2 ResNets it loads, eps is 0 (the converted statistics already include it)."""

    def __init__(self, n, eps=0.0):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(n))
        self.register_buffer("bias", torch.zeros(n))
        self.register_buffer("running_mean", torch.zeros(n))
        self.register_buffer("running_var", torch.ones(n))

    def forward(self, x):
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        bias = self.bias - self.running_mean * scale
        scale = scale.reshape(1, -1, 1, 1).to(x.dtype)
        bias = bias.reshape(1, -1, 1, 1).to(x.dtype)
        return x * scale + bias

    def extra_repr(self):
        return "{}, eps={}".format(self.weight.shape[0], self.eps)
