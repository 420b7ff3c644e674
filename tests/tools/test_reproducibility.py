"""SEED makes training reproducible on the CPU: two runs (with and without data-loader
workers) end with identical weights, and so does a run stopped by SIGTERM or killed with
SIGKILL at random moments (during checkpoint writes too) and started again."""
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.tools.test_train_test_net import ROOT, TINY_MODEL, make_dataset

# long enough (~1 s of training here) that a signal sent when training starts lands before the end
MAX_ITER = 12
# multi-scale sizes and random flips: both must be replayed exactly by a resumed run
SETTINGS = ["SEED", "7", "SOLVER.MAX_ITER", str(MAX_ITER), "SOLVER.CHECKPOINT_PERIOD", "1",
            "INPUT.MIN_SIZE_TRAIN", "(48, 56, 64)", "SOLVER.STEPS", "(8,)"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("repro")
    dataset = make_dataset(base / "data", n=5)
    config = base / "tiny.yaml"
    config.write_text(TINY_MODEL)
    return base, dataset, str(config)


def command(files, output_dir, *extra):
    base, dataset, config = files
    return [sys.executable, os.path.join(ROOT, "tools", "train_net.py"), "--config-file", config, "--skip-test",
            "OUTPUT_DIR", str(output_dir), "DATASETS.TRAIN", "('{}',)".format(dataset), *SETTINGS, *extra]


ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def train(files, output_dir, *extra):
    result = subprocess.run(command(files, output_dir, *extra), cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + result.stderr


def final_weights(output_dir):
    return torch.load(os.path.join(output_dir, "model_final.pth"), weights_only=True)["model"]


def assert_identical(a, b):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]


@pytest.fixture(scope="module")
def reference(files):
    out = files[0] / "reference"
    log = train(files, out)
    assert "seed 7" in log
    return final_weights(out)


def test_same_seed_same_weights_with_and_without_workers(files, reference):
    out = files[0] / "workers"
    train(files, out, "DATALOADER.NUM_WORKERS", "2")
    assert_identical(final_weights(out), reference)


def test_another_seed_gives_other_weights(files, reference):
    out = files[0] / "seed8"
    train(files, out, "SEED", "8")
    assert not all(torch.equal(v, reference[k]) for k, v in final_weights(out).items())


def test_negative_seed_draws_one_logs_it_and_keeps_it_on_resume(files):
    out = files[0] / "random_seed"
    log = train(files, out, "SEED", "-1", "SOLVER.MAX_ITER", "2")
    drawn = int(log.split("using the random seed ")[1].split()[0])
    assert torch.load(out / "model_final.pth", weights_only=True)["seed"] == drawn
    log = train(files, out, "SEED", "-1", "SOLVER.MAX_ITER", "3")
    assert "continuing with its seed {}".format(drawn) in log


def test_sigterm_saves_a_checkpoint_and_the_resumed_run_ends_identical(files, reference):
    out = files[0] / "sigterm"
    process = subprocess.Popen(command(files, out), cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "start training at iteration" in line:  # the handlers are installed
            process.send_signal(signal.SIGTERM)
            break
    lines += process.stdout.readlines()
    assert process.wait(timeout=300) == 128 + signal.SIGTERM, "".join(lines)[-3000:]
    log = "".join(lines)
    stopped = int(log.split("stopped at iteration ")[1].split()[0])
    assert stopped < MAX_ITER and "Traceback" not in log
    assert (out / "last_checkpoint").read_text() == "model_{:07d}.pth".format(stopped)
    assert not (out / "model_final.pth").exists()
    log = train(files, out)
    assert "start training at iteration {} of {}".format(stopped, MAX_ITER) in log
    assert_identical(final_weights(out), reference)


def _run_and_kill(files, out, kill_after_saves, delay):
    """Starts the run; SIGKILL ``delay`` seconds after its ``kill_after_saves``-th "saving
    checkpoint" log line (printed just before the file is written). Returns whether it was
    killed (it may have finished first)."""
    process = subprocess.Popen(command(files, out), cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    saves = 0
    for line in process.stdout:
        saves += "saving checkpoint to" in line
        if saves == kill_after_saves:
            break
    time.sleep(delay)
    killed = process.poll() is None
    if killed:
        process.kill()
    process.stdout.close()
    return_code = process.wait()
    assert killed or return_code == 0
    return killed


def test_sigkill_at_random_moments_then_resume_ends_identical(files, reference):
    """Killed during a checkpoint write, then at a random moment after the next save, then once
    more at random, each time started again with the same command: the run that finishes ends
    with exactly the weights of the uninterrupted one."""
    out = files[0] / "sigkill"
    rng = random.Random(0)
    assert _run_and_kill(files, out, kill_after_saves=1, delay=0.0)  # while model_0000001 is written
    kills = 1
    for _ in range(2):
        kills += _run_and_kill(files, out, kill_after_saves=1, delay=rng.uniform(0.0, 0.15))
    train(files, out)
    assert kills >= 2
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
    assert_identical(final_weights(out), reference)
