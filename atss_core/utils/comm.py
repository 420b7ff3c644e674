"""Helpers over torch.distributed that also work in a single, non-distributed process. A
collective that fails because another process died or stalled (the process group's timeout,
DIST_TIMEOUT) raises PeerLostError naming this rank and what it was waiting for."""
import contextlib
import time

import torch
import torch.distributed as dist


class PeerLostError(RuntimeError):
    pass


@contextlib.contextmanager
def waiting_for_peers(what):
    try:
        yield
    except (RuntimeError, dist.DistError) as error:
        raise PeerLostError("rank {} of {}: {} failed while waiting for the other processes ({}); one of them "
                            "died or stalled for longer than DIST_TIMEOUT: see its log".format(
                                get_rank(), get_world_size(), what, _first_line(error))) from error


def _first_line(error):
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def unwrap_model(model):
    """The module inside a DistributedDataParallel wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


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


def reduce_dict(input_dict, average=True):
    """{name: 0-d tensor} summed (or averaged) over processes; every process gets the result
    (the official one gives it to rank 0 only; the others' copies are then the same)."""
    if not is_distributed() or get_world_size() < 2:
        return input_dict
    with torch.no_grad():
        names = sorted(input_dict.keys())
        stacked = torch.stack([input_dict[k].detach() for k in names])
        with waiting_for_peers("averaging the losses"):
            dist.all_reduce(stacked)
        if average:
            stacked /= get_world_size()
        return dict(zip(names, stacked))


def is_pytorch_1_1_0_or_later():
    """The official version check; every supported torch is later."""
    return True


FINISHED_KEY = "atss_core/main_process_finished"
FINISH_SEEN_KEY = "atss_core/main_process_finished_seen"


def wait_for_main_process(store, rank, world_size, logger=None, poll_seconds=1.0, report_seconds=300.0,
                          key=FINISHED_KEY, what="finish"):
    """Other ranks: returns once the main process has called :func:`announce_finished`, with
    no deadline, since its evaluation may take hours. A rank that exits earlier lets its node's
    torchrun agent time out in the exit barrier (300 s) and leave, and when that agent hosts the
    c10d rendezvous the main process's agent then fails and kills it mid-evaluation. The
    store lives in the main process: its death ends this wait at once (its node's loss within
    the store's timeout, DIST_TIMEOUT). With another ``key`` (what the main process sets when
    it is done with ``what``, e.g. an evaluation during training) nothing is acknowledged."""
    start = time.monotonic()
    reported = start
    while True:
        try:
            finished = store.check([key])
        except (RuntimeError, dist.DistError) as error:
            raise PeerLostError("rank {} of {}: rank 0 ended without finishing while this process waited for it "
                                "({}): see rank 0's log".format(rank, world_size, _first_line(error))) from error
        if finished and key != FINISHED_KEY:
            return
        if finished:
            with contextlib.suppress(RuntimeError):  # rank 0 may be gone already (it waits 30 s at most)
                store.add(FINISH_SEEN_KEY, 1)
            return
        now = time.monotonic()
        if logger is not None and now - reported >= report_seconds:
            logger.info("waiting for rank 0 to %s (%.0f min so far)", what, (now - start) / 60)
            reported = now
        time.sleep(poll_seconds)


def announce_finished(store, world_size, logger=None, poll_seconds=0.05, acknowledge_seconds=30.0):
    """The main process: lets the waiting ranks go, and stays until each has seen it (its
    exit closes the store they poll, which they would take for a crash). A rank that does not
    acknowledge within ``acknowledge_seconds`` is not waited for."""
    store.set(FINISHED_KEY, "1")
    deadline = time.monotonic() + acknowledge_seconds
    while (seen := store.add(FINISH_SEEN_KEY, 0)) < world_size - 1:
        if time.monotonic() > deadline:
            if logger is not None:
                logger.warning("%d of the other %d processes did not acknowledge the end within %.0f s",
                               world_size - 1 - seen, world_size - 1, acknowledge_seconds)
            return
        time.sleep(poll_seconds)
