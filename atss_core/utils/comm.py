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


def all_gather(data):
    """List of ``data`` (any picklable object) from every process, in rank order."""
    if not is_distributed() or get_world_size() == 1:
        return [data]
    gathered = [None] * get_world_size()
    dist.all_gather_object(gathered, data)
    return gathered


def reduce_dict(values, average=True):
    """{name: 0-d tensor} summed (or averaged) over processes; every process gets the result."""
    if not is_distributed() or get_world_size() < 2:
        return values
    with torch.no_grad():
        names = sorted(values.keys())
        stacked = torch.stack([values[k].detach() for k in names])
        dist.all_reduce(stacked)
        if average:
            stacked /= get_world_size()
        return dict(zip(names, stacked))
