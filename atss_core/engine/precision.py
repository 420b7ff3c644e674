"""Mixed precision behind the official DTYPE key: "float32" (default), "float16" (torch.amp
autocast + gradient scaling, CUDA only) or "bfloat16" (autocast without scaling, on CUDA or on
CPUs with bfloat16 arithmetic: avx512_bf16 or AMX).

An amp setting is None (float32) or (device type, torch dtype); it is what the trainer, the
inference loop and the multi-scale test take as ``use_amp`` (True is the old spelling of
CUDA float16)."""
import contextlib

import torch

DTYPES = ("float32", "float16", "bfloat16")


def cpu_has_bf16():
    """Whether this CPU computes in bfloat16 natively (avx512_bf16 or AMX flags)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_dtype(cfg):
    """The amp setting for cfg.DTYPE on cfg.MODEL.DEVICE, or a ValueError saying why it cannot run."""
    if cfg.DTYPE not in DTYPES:
        raise ValueError("DTYPE must be one of {}, got {!r}".format(", ".join(DTYPES), cfg.DTYPE))
    device_type = "cuda" if str(cfg.MODEL.DEVICE).startswith("cuda") else "cpu"
    if cfg.DTYPE == "float32":
        return None
    if cfg.DTYPE == "float16":
        if device_type != "cuda":
            raise ValueError("DTYPE float16 (mixed precision) needs MODEL.DEVICE cuda; on the CPU use float32, or "
                             "bfloat16 on a CPU with avx512_bf16 or AMX")
        return ("cuda", torch.float16)
    if device_type == "cpu" and not cpu_has_bf16():
        raise ValueError("DTYPE bfloat16 on the CPU needs avx512_bf16 or AMX, which this CPU lacks "
                         "(/proc/cpuinfo); use float32")
    return (device_type, torch.bfloat16)


def _normalise(use_amp):
    if use_amp is True:
        return ("cuda", torch.float16)
    return use_amp or None


def autocast_context(use_amp):
    """autocast for an amp setting, else a no-op context."""
    amp = _normalise(use_amp)
    return torch.autocast(amp[0], dtype=amp[1]) if amp else contextlib.nullcontext()


def make_grad_scaler(use_amp):
    """Gradient scaling for float16 only (bfloat16 has float32's range)."""
    amp = _normalise(use_amp)
    return torch.amp.GradScaler("cuda", enabled=bool(amp) and amp[1] == torch.float16)
