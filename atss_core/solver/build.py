"""SGD with the official per-parameter learning rates and weight decays."""
import logging

import torch

from .lr_scheduler import WarmupMultiStepLR


def make_optimizer(cfg, model):
    """Biases: BASE_LR * BIAS_LR_FACTOR and WEIGHT_DECAY_BIAS; deformable-conv offset layers:
    lr * DCONV_OFFSETS_LR_FACTOR; frozen parameters are left out."""
    logger = logging.getLogger(__name__)
    solver = cfg.SOLVER
    params = []
    for key, value in model.named_parameters():
        if not value.requires_grad:
            continue
        lr, weight_decay = solver.BASE_LR, solver.WEIGHT_DECAY
        if "bias" in key:
            lr = solver.BASE_LR * solver.BIAS_LR_FACTOR
            weight_decay = solver.WEIGHT_DECAY_BIAS
        if key.endswith(".offset.weight") or key.endswith(".offset.bias"):
            if solver.DCONV_OFFSETS_LR_FACTOR != 1.0:
                logger.info("lr factor of %s: %s", key, solver.DCONV_OFFSETS_LR_FACTOR)
            lr *= solver.DCONV_OFFSETS_LR_FACTOR
        params.append({"params": [value], "lr": lr, "weight_decay": weight_decay})
    return torch.optim.SGD(params, lr=solver.BASE_LR, momentum=solver.MOMENTUM)


def make_lr_scheduler(cfg, optimizer):
    solver = cfg.SOLVER
    return WarmupMultiStepLR(optimizer, solver.STEPS, solver.GAMMA, warmup_factor=solver.WARMUP_FACTOR,
                             warmup_iters=solver.WARMUP_ITERS, warmup_method=solver.WARMUP_METHOD)
