"""Learning-rate schedules with a constant or linear warm-up, stepped per iteration: multi-step
decay (the official one) and cosine decay."""
import math
from bisect import bisect_right

import torch


def _check_warmup_method(warmup_method):
    if warmup_method not in ("constant", "linear"):
        raise ValueError("SOLVER.WARMUP_METHOD must be 'constant' or 'linear', got {!r}".format(warmup_method))


def warmup_factor_at(iteration, warmup_method, warmup_iters, warmup_factor):
    """``warmup_factor`` ("constant") or a linear rise from it to 1 while iteration <
    ``warmup_iters``, then 1."""
    if iteration >= warmup_iters:
        return 1.0
    if warmup_method == "constant":
        return warmup_factor
    alpha = float(iteration) / warmup_iters
    return warmup_factor * (1 - alpha) + alpha


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
        _check_warmup_method(warmup_method)
        self.milestones = list(milestones)
        self.gamma = gamma
        self.warmup_factor = warmup_factor
        self.warmup_iters = warmup_iters
        self.warmup_method = warmup_method
        super().__init__(optimizer, last_epoch)

    def _factor(self, iteration):
        warmup = warmup_factor_at(iteration, self.warmup_method, self.warmup_iters, self.warmup_factor)
        return warmup * self.gamma ** bisect_right(self.milestones, iteration)

    def get_lr(self):
        factor = self._factor(self.last_epoch)
        return [base_lr * factor for base_lr in self.base_lrs]


class WarmupCosineLR(torch.optim.lr_scheduler.LRScheduler):
    """lr of iteration ``it`` (1-based), t = it - 1: warmup(t) * (end + (base_lr - end) *
    (1 + cos(pi * t / max_iter)) / 2), the same warm-up as WarmupMultiStepLR. ``end_lr`` is
    SOLVER.BASE_LR_END; each parameter group keeps its ratio to ``base_lr`` (SOLVER.BASE_LR),
    so biases end at end_lr * BIAS_LR_FACTOR."""

    def __init__(self, optimizer, max_iter, end_lr=0.0, base_lr=None, warmup_factor=1.0 / 3, warmup_iters=500,
                 warmup_method="linear", last_epoch=-1):
        if max_iter <= 0:
            raise ValueError("WarmupCosineLR needs SOLVER.MAX_ITER > 0, got {}".format(max_iter))
        _check_warmup_method(warmup_method)
        self.max_iter = max_iter
        self.end_lr = end_lr
        self.reference_lr = base_lr
        self.warmup_factor = warmup_factor
        self.warmup_iters = warmup_iters
        self.warmup_method = warmup_method
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        t = self.last_epoch
        warmup = warmup_factor_at(t, self.warmup_method, self.warmup_iters, self.warmup_factor)
        cosine = (1 + math.cos(math.pi * min(t, self.max_iter) / self.max_iter)) / 2
        values = []
        for base_lr in self.base_lrs:
            end = self.end_lr * (base_lr / self.reference_lr if self.reference_lr else 1.0)
            values.append(warmup * (end + (base_lr - end) * cosine))
        return values
