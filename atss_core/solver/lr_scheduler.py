"""Multi-step learning-rate decay with a constant or linear warm-up, stepped per iteration."""
from bisect import bisect_right

import torch


class WarmupMultiStepLR(torch.optim.lr_scheduler.LRScheduler):
    """lr of iteration ``it`` (1-based) = base_lr * warmup(it - 1) * gamma ** (milestones <= it - 1).

    warmup(t) is ``warmup_factor`` ("constant") or rises linearly from it to 1 ("linear")
    while t < ``warmup_iters``, then 1. Step it after each optimizer step, as the official
    loop does with PyTorch >= 1.1: the first iteration runs at base_lr * warmup_factor and the
    rate drops in the iteration after each milestone."""

    def __init__(self, optimizer, milestones, gamma=0.1, warmup_factor=1.0 / 3, warmup_iters=500,
                 warmup_method="linear", last_epoch=-1):
        if list(milestones) != sorted(milestones):
            raise ValueError("SOLVER.STEPS must be increasing integers, got {}".format(milestones))
        if warmup_method not in ("constant", "linear"):
            raise ValueError("SOLVER.WARMUP_METHOD must be 'constant' or 'linear', got {!r}".format(warmup_method))
        self.milestones = list(milestones)
        self.gamma = gamma
        self.warmup_factor = warmup_factor
        self.warmup_iters = warmup_iters
        self.warmup_method = warmup_method
        super().__init__(optimizer, last_epoch)

    def _factor(self, iteration):
        warmup = 1.0
        if iteration < self.warmup_iters:
            if self.warmup_method == "constant":
                warmup = self.warmup_factor
            else:
                alpha = float(iteration) / self.warmup_iters
                warmup = self.warmup_factor * (1 - alpha) + alpha
        return warmup * self.gamma ** bisect_right(self.milestones, iteration)

    def get_lr(self):
        factor = self._factor(self.last_epoch)
        return [base_lr * factor for base_lr in self.base_lrs]
