"""A collective that another process never joins (it died or stalled) ends within the process
group's timeout with PeerLostError naming this rank and what it waited for (gloo, two processes)."""
import datetime
import os
import subprocess
import sys
import time

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from atss_core.utils.comm import PeerLostError, all_gather, synchronize, wait_for_main_process


def _worker(rank, init_file, result_file):
    dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=2))
    if rank == 1:
        time.sleep(6)  # stalls past the timeout, never joining the gather
    else:
        start = time.monotonic()
        try:
            all_gather({"boxes": [1, 2, 3]}, "gathering the evaluation predictions")
            message = "no error"
        except PeerLostError as error:
            message = str(error)
        with open(result_file, "w") as f:
            f.write("{:.1f}\n{}".format(time.monotonic() - start, message))
    # gloo's teardown of a group whose collective timed out sometimes aborts the interpreter's
    # exit (std::terminate); the result is written, so leave without it
    os._exit(0)


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


_MAIN_PROCESS = """
import sys, time, datetime
import torch.distributed as dist
from atss_core.utils.comm import announce_finished
store = dist.TCPStore("127.0.0.1", 0, 2, True, timeout=datetime.timedelta(seconds=30), wait_for_workers=False)
print(store.port, flush=True)
time.sleep(float(sys.argv[1]))  # "evaluating"
if sys.argv[2] == "finish":
    announce_finished(store, 2, acknowledge_seconds=20)
    print("acknowledged", store.add("atss_core/main_process_finished_seen", 0), flush=True)
"""


def _start_main_process(seconds, how):
    process = subprocess.Popen([sys.executable, "-c", _MAIN_PROCESS, str(seconds), how], stdout=subprocess.PIPE,
                               text=True)
    port = int(process.stdout.readline())
    store = dist.TCPStore("127.0.0.1", port, 2, False, timeout=datetime.timedelta(seconds=2))
    return process, store


def test_the_other_ranks_wait_for_rank_0_beyond_the_store_timeout_and_it_waits_for_their_acknowledgement():
    process, store = _start_main_process(4, "finish")  # longer than the store's 2 s timeout
    start = time.monotonic()
    wait_for_main_process(store, 1, 2, poll_seconds=0.1)
    assert time.monotonic() - start > 3
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and output.strip() == "acknowledged 1"


def test_a_rank_waiting_for_rank_0_stops_at_once_when_rank_0_dies():
    process, store = _start_main_process(1, "die")  # exits without announcing
    start = time.monotonic()
    with pytest.raises(PeerLostError, match="rank 1 of 2: rank 0 ended without finishing"):
        wait_for_main_process(store, 1, 2, poll_seconds=0.1)
    assert time.monotonic() - start < 10
    process.communicate(timeout=30)
