"""The optimiser (SGD as officially, or AdamW) with the official per-parameter learning rates and
weight decays, the learning-rate schedule and gradient clipping, from SOLVER.*."""
import logging

import torch

from .lr_scheduler import WarmupCosineLR, WarmupMultiStepLR

OPTIMIZERS = ("SGD", "AdamW")
LR_SCHEDULERS = ("WarmupMultiStepLR", "WarmupCosineLR")
CLIP_TYPES = ("value", "norm")
NORM_LAYERS = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)


def _norm_weights(model):
    """ids of the weights of normalisation layers (GroupNorm in the head and FPN, BatchNorm)."""
    return {id(module.weight) for module in model.modules()
            if isinstance(module, NORM_LAYERS) and getattr(module, "weight", None) is not None}


def make_optimizer(cfg, model):
    """Biases: BASE_LR * BIAS_LR_FACTOR and WEIGHT_DECAY_BIAS; deformable-conv offset layers:
    lr * DCONV_OFFSETS_LR_FACTOR; norm weights: WEIGHT_DECAY_NORM when it is not negative;
    frozen parameters are left out. SOLVER.OPTIMIZER picks SGD (MOMENTUM) or AdamW (BETAS)."""
    logger = logging.getLogger(__name__)
    solver = cfg.SOLVER
    if solver.OPTIMIZER not in OPTIMIZERS:
        raise ValueError("SOLVER.OPTIMIZER must be one of {}, got {!r}".format(", ".join(OPTIMIZERS), solver.OPTIMIZER))
    norm_weights = _norm_weights(model) if solver.WEIGHT_DECAY_NORM >= 0 else set()
    params = []
    for key, value in model.named_parameters():
        if not value.requires_grad:
            continue
        lr, weight_decay = solver.BASE_LR, solver.WEIGHT_DECAY
        if "bias" in key:
            lr = solver.BASE_LR * solver.BIAS_LR_FACTOR
            weight_decay = solver.WEIGHT_DECAY_BIAS
        elif id(value) in norm_weights:
            weight_decay = solver.WEIGHT_DECAY_NORM
        if key.endswith(".offset.weight") or key.endswith(".offset.bias"):
            if solver.DCONV_OFFSETS_LR_FACTOR != 1.0:
                logger.info("lr factor of %s: %s", key, solver.DCONV_OFFSETS_LR_FACTOR)
            lr *= solver.DCONV_OFFSETS_LR_FACTOR
        params.append({"params": [value], "lr": lr, "weight_decay": weight_decay})
    if solver.OPTIMIZER == "AdamW":
        return torch.optim.AdamW(params, lr=solver.BASE_LR, betas=tuple(solver.BETAS))
    return torch.optim.SGD(params, lr=solver.BASE_LR, momentum=solver.MOMENTUM)


def make_lr_scheduler(cfg, optimizer):
    solver = cfg.SOLVER
    warmup = dict(warmup_factor=solver.WARMUP_FACTOR, warmup_iters=solver.WARMUP_ITERS,
                  warmup_method=solver.WARMUP_METHOD)
    if solver.LR_SCHEDULER_NAME == "WarmupCosineLR":
        return WarmupCosineLR(optimizer, solver.MAX_ITER, end_lr=solver.BASE_LR_END, base_lr=solver.BASE_LR, **warmup)
    if solver.LR_SCHEDULER_NAME != "WarmupMultiStepLR":
        raise ValueError("SOLVER.LR_SCHEDULER_NAME must be one of {}, got {!r}".format(
            ", ".join(LR_SCHEDULERS), solver.LR_SCHEDULER_NAME))
    return WarmupMultiStepLR(optimizer, solver.STEPS, solver.GAMMA, **warmup)


def make_gradient_clipper(cfg):
    """None when SOLVER.CLIP_GRADIENTS is off, else a function of the parameters that clips
    their gradients in place and returns the gradients' total norm before clipping."""
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if not clip.ENABLED:
        return None
    if clip.CLIP_TYPE not in CLIP_TYPES:
        raise ValueError("SOLVER.CLIP_GRADIENTS.CLIP_TYPE must be one of {}, got {!r}".format(
            ", ".join(CLIP_TYPES), clip.CLIP_TYPE))
    if clip.CLIP_VALUE <= 0:
        raise ValueError("SOLVER.CLIP_GRADIENTS.CLIP_VALUE must be positive, got {}".format(clip.CLIP_VALUE))
    limit, norm_type = float(clip.CLIP_VALUE), float(clip.NORM_TYPE)

    def clip_gradients(parameters):
        with_grad = [p for p in parameters if p.grad is not None]
        if clip.CLIP_TYPE == "norm":
            return torch.nn.utils.clip_grad_norm_(with_grad, limit, norm_type)
        norm = torch.nn.utils.get_total_norm([p.grad for p in with_grad], norm_type)
        torch.nn.utils.clip_grad_value_(with_grad, limit)
        return norm

    return clip_gradients
