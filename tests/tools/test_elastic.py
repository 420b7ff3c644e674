"""torchrun --max-restarts: a worker killed with SIGKILL mid-run is replaced, the new worker
group starts (it used to hang in gloo's start-up, reading the dead workers' addresses from the
reused store), resumes from the last checkpoint and ends with the same weights as an
uninterrupted run with the same SEED (gloo on the CPU, loopback only)."""
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from tests.tools.test_reproducibility import assert_identical, final_weights
from tests.tools.test_train_test_net import ROOT, TINY_MODEL, make_dataset

SETTINGS = ["SEED", "5", "SOLVER.MAX_ITER", "30", "SOLVER.CHECKPOINT_PERIOD", "5", "SOLVER.IMS_PER_BATCH", "4",
            "SOLVER.STEPS", "(20,)", "TENSORBOARD.ENABLED", "False", "DIST_TIMEOUT", "120"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(tmp_path, output_dir, *launcher_args):
    dataset = make_dataset(tmp_path / "data", n=8) if not (tmp_path / "data").exists() else \
        "coco:{}:{}".format(tmp_path / "data" / "images", tmp_path / "data" / "ann.json")
    (tmp_path / "tiny.yaml").write_text(TINY_MODEL)
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master-addr", "127.0.0.1",
            "--master-port", str(free_port()), *launcher_args, os.path.join(ROOT, "tools", "train_net.py"),
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


def test_two_nodes_train_as_one_node_with_two_processes(reference):
    """torchrun --nnodes 2 --nproc_per_node 1 with a c10d rendezvous, started twice on this
    machine: the same final weights as the one-node run (one thread per process in both)."""
    tmp_path, reference_weights = reference
    output = tmp_path / "two_nodes"
    endpoint = "127.0.0.1:{}".format(free_port())
    nodes = []
    for _ in range(2):
        command = torchrun(tmp_path, output, "--nnodes", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint,
                           "--rdzv-id", "two_nodes")
        at = command.index("--nproc_per_node")
        command[at + 1] = "1"
        at = command.index("--master-addr")
        del command[at:at + 4]  # the c10d rendezvous chooses the master
        nodes.append(subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    logs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], logs[0][-2000:] + logs[1][-2000:]
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
    results = {}
    for processes in (1, 2, 3):
        output = tmp_path / "eval{}".format(processes)
        command = [os.path.join(ROOT, "tools", "test_net.py"), "--config-file", str(tmp_path / "tiny.yaml"),
                   "MODEL.WEIGHT", str(tmp_path / "w.pth"), "DATASETS.TEST", "('{}',)".format(dataset),
                   "TEST.IMS_PER_BATCH", str(processes), "MODEL.ATSS.INFERENCE_TH", "0.0", "OUTPUT_DIR", str(output),
                   "TENSORBOARD.ENABLED", "False"]
        if processes > 1:
            command = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master-addr",
                       "127.0.0.1", "--master-port", str(free_port())] + command
        result = subprocess.run([sys.executable] + command, cwd=ROOT, env=ENV, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
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
