"""A learnable scalar multiplier (one per FPN level in the ATSS head)."""
import torch
from torch import nn


class Scale(nn.Module):
    def __init__(self, init_value=1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor([float(init_value)]))

    def forward(self, x):
        return x * self.scale
