"""A collective that another process never joins (it died or stalled) ends within the process
group's timeout with PeerLostError naming this rank and what it waited for (gloo, two processes)."""
import datetime
import time

import torch.distributed as dist
import torch.multiprocessing as mp

from atss_core.utils.comm import PeerLostError, all_gather, synchronize


def _worker(rank, init_file, result_file):
    dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=2))
    if rank == 1:
        time.sleep(6)  # stalls past the timeout, never joining the gather
        return
    start = time.monotonic()
    try:
        all_gather({"boxes": [1, 2, 3]}, "gathering the evaluation predictions")
        message = "no error"
    except PeerLostError as error:
        message = str(error)
    with open(result_file, "w") as f:
        f.write("{:.1f}\n{}".format(time.monotonic() - start, message))


def test_a_stalled_peer_ends_the_gather_with_a_message_naming_the_rank_and_the_wait(tmp_path):
    result_file = str(tmp_path / "result.txt")
    context = mp.start_processes(_worker, args=(str(tmp_path / "init"), result_file), nprocs=2, join=False,
                                 start_method="spawn")
    while not context.join(timeout=60):
        pass
    seconds, message = open(result_file).read().split("\n", 1)
    assert float(seconds) < 6.0  # the timeout, not the peer's return, ended the wait
    assert message.startswith("rank 0 of 2: gathering the evaluation predictions failed while waiting for the other "
                              "processes (") and "DIST_TIMEOUT" in message


def test_single_process_helpers_need_no_process_group():
    assert all_gather(5) == [5]
    synchronize("nothing")  # no process group: returns at once
