"""Sigmoid focal loss (Lin et al., 2017) as one fused kernel, forward and backward."""
import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ._ext import _C, as_float32_if_half


class _SigmoidFocalLossFunction(torch.autograd.Function):
    """Fused: the forward pass also computes d(loss)/d(logits) (each loss element
    depends on its own logit only), so the backward is a single multiplication."""

    @staticmethod
    def forward(ctx, logits, targets, gamma, alpha, reduce_sum):
        loss, grad = _C.sigmoid_focal_loss_forward(logits, targets, gamma, alpha, reduce_sum, ctx.needs_input_grad[0])
        ctx.save_for_backward(grad)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, d_loss):
        (grad,) = ctx.saved_tensors
        return grad * d_loss, None, None, None, None


def sigmoid_focal_loss(logits, targets, gamma=2.0, alpha=0.25, reduction="sum"):
    """Focal loss of ``logits`` [N, C] against integer ``targets`` [N].

    targets: 0 is background, k in 1..C marks class k (logit column k - 1), and a
    negative value ignores the row. reduction: "sum" (the official behaviour,
    computed without materialising the [N, C] losses) or "none".
    """
    if reduction not in ("sum", "none"):
        raise ValueError("sigmoid_focal_loss: reduction must be 'sum' or 'none', got {!r}".format(reduction))
    dtype = logits.dtype
    (logits,) = as_float32_if_half(logits)
    loss = _SigmoidFocalLossFunction.apply(logits, targets, float(gamma), float(alpha), reduction == "sum")
    return loss.to(dtype)


def sigmoid_focal_loss_cpu(logits, targets, gamma, alpha):
    """The official per-element loss [N, C] (its name; the compiled kernel computes it on every device)."""
    return sigmoid_focal_loss(logits, targets, gamma, alpha, reduction="none")


class SigmoidFocalLoss(nn.Module):
    """``SigmoidFocalLoss(gamma, alpha)(logits, targets)`` returns the summed loss."""

    def __init__(self, gamma, alpha):
        super().__init__()
        self.gamma = gamma
        self.alpha = alpha

    def forward(self, logits, targets):
        return sigmoid_focal_loss(logits, targets, self.gamma, self.alpha, reduction="sum")

    def extra_repr(self):
        return "gamma={}, alpha={}".format(self.gamma, self.alpha)
