"""Helpers over torch.distributed that also work in a single, non-distributed process. A
collective that fails because another process died or stalled (the process group's timeout,
DIST_TIMEOUT) raises PeerLostError naming this rank and what it was waiting for."""
import contextlib

import torch
import torch.distributed as dist


class PeerLostError(RuntimeError):
    pass


@contextlib.contextmanager
def waiting_for_peers(what):
    try:
        yield
    except (RuntimeError, dist.DistError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise PeerLostError("rank {} of {}: {} failed while waiting for the other processes ({}); one of them "
                            "died or stalled for longer than DIST_TIMEOUT: see its log".format(
                                get_rank(), get_world_size(), what, detail)) from error


def is_distributed():
    return dist.is_available() and dist.is_initialized()


def get_world_size():
    return dist.get_world_size() if is_distributed() else 1


def get_rank():
    return dist.get_rank() if is_distributed() else 0


def is_main_process():
    return get_rank() == 0


def synchronize(what="a barrier"):
    if is_distributed() and get_world_size() > 1:
        with waiting_for_peers(what):
            dist.barrier()


def reduce_sum(tensor):
    """Sum of ``tensor`` over all processes (a copy; the input is left alone)."""
    tensor = tensor.clone()
    if is_distributed() and get_world_size() > 1:
        with waiting_for_peers("a sum over processes"):
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather(data, what="gathering results"):
    """List of ``data`` (any picklable object) from every process, in rank order."""
    if not is_distributed() or get_world_size() == 1:
        return [data]
    gathered = [None] * get_world_size()
    with waiting_for_peers(what):
        dist.all_gather_object(gathered, data)
    return gathered


def reduce_dict(values, average=True):
    """{name: 0-d tensor} summed (or averaged) over processes; every process gets the result."""
    if not is_distributed() or get_world_size() < 2:
        return values
    with torch.no_grad():
        names = sorted(values.keys())
        stacked = torch.stack([values[k].detach() for k in names])
        with waiting_for_peers("averaging the losses"):
            dist.all_reduce(stacked)
        if average:
            stacked /= get_world_size()
        return dict(zip(names, stacked))
