"""Helpers over torch.distributed that also work in a single, non-distributed process."""
import torch
import torch.distributed as dist


def is_distributed():
    return dist.is_available() and dist.is_initialized()


def get_world_size():
    return dist.get_world_size() if is_distributed() else 1


def get_rank():
    return dist.get_rank() if is_distributed() else 0


def is_main_process():
    return get_rank() == 0


def synchronize():
    if is_distributed() and get_world_size() > 1:
        dist.barrier()


def reduce_sum(tensor):
    """Sum of ``tensor`` over all processes (a copy; the input is left alone)."""
    tensor = tensor.clone()
    if is_distributed() and get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor
