"""Mixed precision behind the official DTYPE key: "float32" (default) or "float16"
(torch.amp autocast + gradient scaling, CUDA only)."""
import contextlib

import torch


def check_dtype(cfg):
    if cfg.DTYPE not in ("float32", "float16"):
        raise ValueError("DTYPE must be 'float32' or 'float16', got {!r}".format(cfg.DTYPE))
    if cfg.DTYPE == "float16" and not str(cfg.MODEL.DEVICE).startswith("cuda"):
        raise ValueError("DTYPE float16 (mixed precision) needs MODEL.DEVICE cuda; on the CPU use float32")
    return cfg.DTYPE == "float16"


def autocast_context(use_amp):
    """float16 autocast on CUDA when ``use_amp``, else a no-op context."""
    return torch.autocast("cuda", dtype=torch.float16) if use_amp else contextlib.nullcontext()


def make_grad_scaler(use_amp):
    return torch.amp.GradScaler("cuda", enabled=use_amp)
