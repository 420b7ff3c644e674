"""Median wall-clock timing of callables, with warm-up runs excluded and CUDA synchronised."""
import statistics
import time

import torch


def _sync(device):
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def median_seconds(fn, warmup, repeats, device=None):
    """Median seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones."""
    return interleaved_medians({"fn": fn}, warmup, repeats, device)["fn"]


def interleaved_medians(named_fns, warmup, repeats, device=None):
    """{name: median seconds} of callables run round-robin (one call of each in turn, so that
    drifts in the machine's speed hit all of them)."""
    for _ in range(warmup):
        for fn in named_fns.values():
            fn()
    times = {name: [] for name in named_fns}
    for _ in range(repeats):
        for name, fn in named_fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
