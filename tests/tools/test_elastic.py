"""torchrun --max-restarts: a worker killed with SIGKILL mid-run is replaced, the new worker
group starts (it used to hang in gloo's start-up, reading the dead workers' addresses from the
reused store), resumes from the last checkpoint and ends with the same weights as an
uninterrupted run with the same SEED (gloo on the CPU, loopback only)."""
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.tools.test_reproducibility import assert_identical, final_weights
from tests.tools.test_train_test_net import ROOT, TINY_MODEL, free_port, make_dataset

SETTINGS = ["SEED", "5", "SOLVER.MAX_ITER", "30", "SOLVER.CHECKPOINT_PERIOD", "5", "SOLVER.IMS_PER_BATCH", "4",
            "SOLVER.STEPS", "(20,)", "TENSORBOARD.ENABLED", "False", "DIST_TIMEOUT", "120"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def launcher_log_dir(tmp_path):
    """torchrun otherwise leaves a torchelastic_* folder in /tmp after every run."""
    return ["--log-dir", str(tmp_path / "torchrun_logs")]


def torchrun(tmp_path, output_dir, *launcher_args):
    dataset = make_dataset(tmp_path / "data", n=8) if not (tmp_path / "data").exists() else \
        "coco:{}:{}".format(tmp_path / "data" / "images", tmp_path / "data" / "ann.json")
    (tmp_path / "tiny.yaml").write_text(TINY_MODEL)
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master-addr", "127.0.0.1",
            "--master-port", str(free_port()), *launcher_log_dir(tmp_path), *launcher_args,
            os.path.join(ROOT, "tools", "train_net.py"),
            "--config-file", str(tmp_path / "tiny.yaml"), "--skip-test", "OUTPUT_DIR", str(output_dir),
            "DATASETS.TRAIN", "('{}',)".format(dataset), *SETTINGS]


def children(pid):
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in result.stdout.split()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted one-node, two-process run: (its folder, its final weights)."""
    base = tmp_path_factory.mktemp("elastic")
    result = subprocess.run(torchrun(base, base / "reference"), cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return base, final_weights(base / "reference")


def test_a_killed_worker_is_restarted_and_the_run_ends_as_an_uninterrupted_one(reference):
    tmp_path, reference_weights = reference

    output = tmp_path / "killed"
    process = subprocess.Popen(torchrun(tmp_path, output, "--max-restarts", "2"), cwd=ROOT, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not (output / "model_0000010.pth").exists():  # in the middle of the run
        assert time.time() < deadline and process.poll() is None, "the run did not reach iteration 10"
        time.sleep(0.2)
    workers = children(process.pid)
    assert len(workers) == 2, workers
    os.kill(workers[1], signal.SIGKILL)
    log, _ = process.communicate(timeout=300)
    assert process.returncode == 0, log[-3000:]
    assert "resuming from" in log and "start training at iteration 0 of 30" in log
    resumed_at = int(log.split("resuming from ")[1].split("model_")[1][:7])
    assert 10 <= resumed_at < 30
    assert_identical(final_weights(output), reference_weights)
    assert torch.load(output / "model_final.pth", weights_only=True)["iteration"] == 30


def two_node_command(tmp_path, output, endpoint, *launcher_args):
    """One node of a two-node c10d job: torchrun with one worker; the rendezvous picks the master."""
    command = torchrun(tmp_path, output, "--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint,
                       "--rdzv-id", output.name, *launcher_args)
    command[command.index("--nproc_per_node") + 1] = "1"
    at = command.index("--master-addr")
    del command[at:at + 4]
    return command


def test_two_nodes_train_as_one_node_with_two_processes(reference):
    """torchrun --nnodes 2 --nproc_per_node 1 with a c10d rendezvous, started twice on this
    machine: the same final weights as the one-node run (one thread per process in both)."""
    tmp_path, reference_weights = reference
    output = tmp_path / "two_nodes"
    endpoint = "127.0.0.1:{}".format(free_port())
    nodes = [subprocess.Popen(two_node_command(tmp_path, output, endpoint), cwd=ROOT, env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    logs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
    assert_identical(final_weights(output), reference_weights)


def test_a_node_killed_and_started_again_rejoins_and_the_run_ends_as_one_node(reference):
    """Two c10d nodes with --max-restarts; the second node (its torchrun and its worker) is
    killed with SIGKILL in the middle of the run and started again: the first node's agent
    restarts its worker, both re-rendezvous, resume from the last checkpoint and end with the
    one-node weights."""
    tmp_path, reference_weights = reference
    output = tmp_path / "node_killed"
    endpoint = "127.0.0.1:{}".format(free_port())

    env = dict(ENV, TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")

    def start_node():
        return subprocess.Popen(two_node_command(tmp_path, output, endpoint, "--max-restarts", "2"), cwd=ROOT,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    first = start_node()  # hosts the rendezvous store, so it must be the node that survives
    time.sleep(3)
    second = start_node()
    deadline = time.time() + 300
    while not (output / "model_0000010.pth").exists():
        assert time.time() < deadline and first.poll() is None, "the run did not reach iteration 10"
        time.sleep(0.2)
    for pid in [second.pid] + children(second.pid):  # the whole node: its agent and its worker
        os.kill(pid, signal.SIGKILL)
    second.communicate()
    second = start_node()
    logs = [node.communicate(timeout=600)[0] for node in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    assert "resuming from" in logs[0] + logs[1]
    assert_identical(final_weights(output), reference_weights)


SLOW_SAVE = """
import os, time
if os.environ.get("RANK") == "0":
    import torch
    save = torch.save

    def slow_save(obj, f, *args, **kwargs):
        marker = os.environ["SLOW_SAVE_MARKER"]
        if str(getattr(f, "name", f)).endswith("model_0000010.pth.tmp") and not os.path.exists(marker):
            open(marker, "w").close()
            time.sleep(4)
        return save(obj, f, *args, **kwargs)

    torch.save = slow_save
"""


SLOW_PREDICTIONS_SAVE = """
import atexit, os, time
folder, rank = os.environ["EXIT_TIMES_DIR"], os.environ.get("RANK")
if rank is not None:
    atexit.register(lambda: open(os.path.join(folder, "exit" + rank), "w").write(repr(time.time())))
if rank == "0":
    import torch
    save = torch.save

    def slow_save(obj, f, *args, **kwargs):
        if str(f).endswith("predictions.pth"):
            time.sleep(12)
            open(os.path.join(folder, "saved"), "w").write(repr(time.time()))
        return save(obj, f, *args, **kwargs)

    torch.save = slow_save
"""


def test_a_rank_killed_while_rank_0_saves_leaves_that_checkpoint_whole(reference, tmp_path):
    """Rank 1 dies (SIGKILL) while rank 0 writes the iteration-10 checkpoint (slowed down by a
    sitecustomize that delays that torch.save): rank 0 finishes the file before it notices, the
    restarted group resumes from it, and the run ends with the uninterrupted run's weights."""
    base, reference_weights = reference
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SLOW_SAVE)
    marker = tmp_path / "saving"
    env = dict(ENV, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), ROOT]), SLOW_SAVE_MARKER=str(marker))
    output = tmp_path / "killed_during_save"
    process = subprocess.Popen(torchrun(base, output, "--max-restarts", "1"), cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not marker.exists():
        assert time.time() < deadline and process.poll() is None, "rank 0 did not start the iteration-10 save"
        time.sleep(0.05)
    workers = children(process.pid)
    assert len(workers) == 2, workers
    rank1 = [pid for pid in workers if "RANK=1\0" in open("/proc/{}/environ".format(pid)).read()]
    assert len(rank1) == 1, workers
    os.kill(rank1[0], signal.SIGKILL)
    log, _ = process.communicate(timeout=300)
    assert process.returncode == 0, log[-3000:]
    assert "resuming from {}".format(output / "model_0000010.pth") in log, log[-3000:]
    assert torch.load(output / "model_0000010.pth", weights_only=True)["iteration"] == 10
    assert not list(output.glob("*.tmp"))
    assert_identical(final_weights(output), reference_weights)


def test_evaluation_with_one_two_and_three_processes_gives_the_same_detections_and_ap(tmp_path):
    """test_net under torchrun: 7 images over 2 and 3 processes (neither divides them; the
    sampler pads with repeats, which the gather must drop) give one process's results."""
    import json

    from atss_core.config import cfg as default_cfg
    from atss_core.modeling.detector import build_detection_model

    dataset = make_dataset(tmp_path / "data", n=7)
    (tmp_path / "tiny.yaml").write_text(TINY_MODEL)
    cfg = default_cfg.clone()
    cfg.merge_from_file(str(tmp_path / "tiny.yaml"))
    torch.manual_seed(0)
    torch.save({"model": build_detection_model(cfg).state_dict()}, tmp_path / "w.pth")
    # with 2 processes rank 0's evaluation outlasts DIST_TIMEOUT (its predictions.pth save is
    # slowed down): the other rank waits for it without failing and exits after it
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SLOW_PREDICTIONS_SAVE)
    exit_times = tmp_path / "exit_times"
    exit_times.mkdir()
    slow_env = dict(ENV, PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), ROOT]), EXIT_TIMES_DIR=str(exit_times))
    results = {}
    for processes in (1, 2, 3):
        output = tmp_path / "eval{}".format(processes)
        command = [os.path.join(ROOT, "tools", "test_net.py"), "--config-file", str(tmp_path / "tiny.yaml"),
                   "MODEL.WEIGHT", str(tmp_path / "w.pth"), "DATASETS.TEST", "('{}',)".format(dataset),
                   "TEST.IMS_PER_BATCH", str(processes), "MODEL.ATSS.INFERENCE_TH", "0.0", "OUTPUT_DIR", str(output),
                   "TENSORBOARD.ENABLED", "False"] + (["DIST_TIMEOUT", "5"] if processes == 2 else [])
        if processes > 1:
            command = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master-addr",
                       "127.0.0.1", "--master-port", str(free_port()), *launcher_log_dir(tmp_path)] + command
        result = subprocess.run([sys.executable] + command, cwd=ROOT, env=slow_env if processes == 2 else ENV,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        if processes == 2:  # rank 1 stayed until rank 0 had evaluated (see launch.process_group_closed_at_exit)
            assert float((exit_times / "exit1").read_text()) > float((exit_times / "saved").read_text())
        folder = output / "inference" / os.listdir(output / "inference")[0]
        detections = json.loads((folder / "bbox.json").read_text())
        metrics = json.loads((folder / "coco_metrics.json").read_text())["bbox"]
        results[processes] = (sorted((d["image_id"], d["category_id"], round(d["score"], 4),
                                      [round(v, 2) for v in d["bbox"]]) for d in detections), metrics)
    assert len(results[1][0]) > 7 * 10 and {d[0] for d in results[1][0]} == set(range(1, 8))
    for processes in (2, 3):
        assert results[processes][0] == results[1][0], processes
        assert results[processes][1] == results[1][1], processes


def test_sigterm_to_every_rank_saves_one_checkpoint_and_each_exits_143(tmp_path):
    """A scheduler's preemption (SIGTERM to every worker of the job): the ranks agree on the
    iteration to stop at, rank 0 writes that checkpoint, the workers exit 128 + SIGTERM."""
    output = tmp_path / "preempted"
    process = subprocess.Popen(torchrun(tmp_path, output), cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not (output / "model_0000005.pth").exists():
        assert time.time() < deadline and process.poll() is None, "the run did not reach iteration 5"
        time.sleep(0.2)
    workers = children(process.pid)
    assert len(workers) == 2, workers
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
    log, _ = process.communicate(timeout=300)
    stopped = int(log.split("stopped at iteration ")[1].split()[0])
    assert 5 <= stopped < 30
    assert (output / "last_checkpoint").read_text() == "model_{:07d}.pth".format(stopped)
    assert torch.load(output / "model_{:07d}.pth".format(stopped), weights_only=True)["iteration"] == stopped
    assert not (output / "model_final.pth").exists()
    # torchrun reports the first worker to end (143), then ends the other; no worker failed otherwise
    assert "failed (exitcode: 143)" in log and "error:" not in log, log[-3000:]


def test_multi_node_restarts_without_the_unshared_rendezvous_store_are_warned_about():
    from atss_core.engine.launch import node_replacement_warning

    two_nodes = {"GROUP_WORLD_SIZE": "2", "TORCHELASTIC_MAX_RESTARTS": "3"}
    assert "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1" in node_replacement_warning(two_nodes)
    assert node_replacement_warning(dict(two_nodes, TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")) is None
    assert node_replacement_warning(dict(two_nodes, GROUP_WORLD_SIZE="1")) is None  # one node: its agent restarts all
    assert node_replacement_warning(dict(two_nodes, TORCHELASTIC_MAX_RESTARTS="0")) is None
    assert node_replacement_warning({}) is None
