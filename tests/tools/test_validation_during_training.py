"""Evaluation during training (SOLVER.TEST_PERIOD) through tools/train_net.py: metrics.json,
model_best.pth and their survival of a SIGKILL, EMA runs resumed, and the class names a
checkpoint records on their way to the demo and test_net."""
import json
import os
import subprocess
import sys

import pytest
import torch

from atss_core.utils.metrics_file import read_metrics

from .test_train_test_net import ROOT, TINY_MODEL, make_dataset, run

PERIODIC = ("SOLVER.MAX_ITER", "5", "SOLVER.TEST_PERIOD", "2", "SOLVER.STEPS", "(4,)", "SOLVER.WARMUP_ITERS", "1",
            "SEED", "3", "TENSORBOARD.ENABLED", "False",
            "MODEL.ATSS.INFERENCE_TH", "0.001")  # an untrained model's detections score about 0.01

# a sitecustomize for the killed run: KILL_SIGNAL right after metrics.json received the evaluation
# of iteration KILL_AT_EVALUATION (before model_best.pth and before the next checkpoint)
KILL_AFTER_EVALUATION = """
import os, signal
import atss_core.utils.metrics_file as metrics_file

write = metrics_file.MetricsFile.write


def write_then_die(self, iteration, values):
    written = write(self, iteration, values)
    marker = os.environ["KILL_MARKER"]
    if iteration == int(os.environ["KILL_AT_EVALUATION"]) and any("/" in k for k in values) \\
            and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), getattr(signal, os.environ["KILL_SIGNAL"]))
    return written


metrics_file.MetricsFile.write = write_then_die
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("validation")
    dataset = make_dataset(base / "data", n=6)
    config = base / "tiny.yaml"
    config.write_text(TINY_MODEL)
    return base, dataset, str(config)


def evaluations(folder):
    return [r for r in read_metrics(str(folder / "metrics.json")) if any("/" in k for k in r)]


def ap_key(records):
    (key,) = [k for k in records[0] if k.endswith("/AP")]
    return key


def best_of(records, key):
    best = None
    for record in records:  # the first of equal values wins, as model_best keeps it
        if best is None or record[key] > best[key]:
            best = record
    return best


def test_periodic_evaluations_land_in_metrics_json_and_keep_the_best(files):
    base, dataset, config = files
    out = base / "single"
    log = run("train_net.py", config, out, dataset, *PERIODIC, "SOLVER.CHECKPOINT_PERIOD", "1", flags=["--skip-test"])
    records = read_metrics(str(out / "metrics.json"))
    evaluated = evaluations(out)
    assert [r["iteration"] for r in evaluated] == [2, 4, 5]
    key = ap_key(evaluated)
    assert key.endswith("ann.json/AP") and {key.replace("/AP", "/AP50"), key.replace("/AP", "/AP-green")} <= set(
        evaluated[0])
    training = [r for r in records if "loss" in r]
    assert [r["iteration"] for r in training] == [5] and {"loss_cls", "lr", "time"} <= set(training[0])
    best = best_of(evaluated, key)
    saved = torch.load(out / "model_best.pth", weights_only=True)
    assert saved["best"] == {"metric": key, "value": pytest.approx(best[key]), "iteration": best["iteration"]}
    assert saved["class_names"] == ["__background__", "green", "red"]
    # the weights of the best evaluation: those of that iteration's checkpoint
    at_best = torch.load(out / ("model_final.pth" if best["iteration"] == 5 else
                                "model_{:07d}.pth".format(best["iteration"])), weights_only=True)
    for name, value in at_best["model"].items():
        assert torch.equal(saved["model"][name], value), name
    assert "optimizer" not in saved
    assert "training recipe:" in log and "validation:        every 2 iterations on DATASETS.TEST" in log
    # the last checkpoint holds the best record, and every checkpoint the class names
    final = torch.load(out / "model_final.pth", weights_only=True)
    assert final["best"]["iteration"] == best["iteration"]
    assert final["class_names"] == ["__background__", "green", "red"]
    # test_net evaluates model_best.pth and says which iteration won
    log = run("test_net.py", config, base / "eval_best", dataset, "MODEL.WEIGHT", str(out / "model_best.pth"))
    assert "the best {}, {:.4f}, at iteration {}".format(key, best[key], best["iteration"]) in log
    assert "class names differ" not in log


def test_a_run_killed_between_evaluations_resumes_with_each_evaluation_once(files, tmp_path):
    base, dataset, config = files
    reference = base / "reference"
    run("train_net.py", config, reference, dataset, *PERIODIC, "SOLVER.CHECKPOINT_PERIOD", "1", flags=["--skip-test"])
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(KILL_AFTER_EVALUATION)
    out = tmp_path / "killed"
    command = [sys.executable, os.path.join(ROOT, "tools", "train_net.py"), "--config-file", config, "--skip-test",
               "OUTPUT_DIR", str(out), "DATASETS.TRAIN", "('{}',)".format(dataset), "DATASETS.TEST",
               "('{}',)".format(dataset), *PERIODIC, "SOLVER.CHECKPOINT_PERIOD", "3"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(site), ROOT]),
               KILL_MARKER=str(tmp_path / "killed_once"), KILL_AT_EVALUATION="4", KILL_SIGNAL="SIGKILL")
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == -9, first.stderr[-3000:]
    assert [r["iteration"] for r in evaluations(out)] == [2, 4]
    assert "model_0000003.pth" in (out / "last_checkpoint").read_text()  # it resumes before the evaluation of 4
    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    log = second.stdout + second.stderr
    assert "metrics.json already holds the evaluation of iteration 4" in log
    evaluated = evaluations(out)
    assert [r["iteration"] for r in evaluated] == [2, 4, 5]
    assert evaluated == evaluations(reference)  # CPU training is deterministic under SEED
    expected = torch.load(reference / "model_best.pth", weights_only=True)
    saved = torch.load(out / "model_best.pth", weights_only=True)
    assert saved["best"] == expected["best"]
    for name, value in expected["model"].items():
        assert torch.equal(saved["model"][name], value), name


def test_the_best_record_survives_a_resume(files):
    base, dataset, config = files
    out = base / "best_resumed"
    first = PERIODIC[:1] + ("2",) + PERIODIC[2:]
    run("train_net.py", config, out, dataset, *first, "SOLVER.BEST_METRIC", "-AP", flags=["--skip-test"])
    recorded = torch.load(out / "model_final.pth", weights_only=True)["best"]
    assert recorded["iteration"] == 2
    log = run("train_net.py", config, out, dataset, *PERIODIC, "SOLVER.BEST_METRIC", "-AP", flags=["--skip-test"])
    assert "best so far: {} {:.4f} at iteration 2".format(recorded["metric"], recorded["value"]) in log
    evaluated = evaluations(out)
    lowest = min(evaluated, key=lambda r: (r[recorded["metric"]], r["iteration"]))
    assert torch.load(out / "model_best.pth", weights_only=True)["best"]["iteration"] == lowest["iteration"]


def test_periodic_evaluation_with_two_processes(files):
    base, dataset, config = files
    out = base / "ddp"
    log = run("train_net.py", config, out, dataset, *PERIODIC, launcher="torchrun", flags=["--skip-test"])
    assert "with 2 process(es)" in log
    evaluated = evaluations(out)
    assert [r["iteration"] for r in evaluated] == [2, 4, 5]
    assert (out / "model_best.pth").exists()
    # each process predicted its half of the images, and the main process evaluated all of them
    assert "evaluating on {} (6 images)".format(dataset) in log and "do not cover" not in log


def test_an_ema_run_resumed_ends_with_the_uninterrupted_average(files):
    base, dataset, config = files
    ema = ("MODEL.EMA.ENABLED", "True", "MODEL.EMA.DECAY", "0.9", "MODEL.EMA.WARMUP_ITERS", "2", "SOLVER.MAX_ITER",
           "4", "SEED", "5", "SOLVER.CHECKPOINT_PERIOD", "2", "TENSORBOARD.ENABLED", "False")
    run("train_net.py", config, base / "ema_whole", dataset, *ema, flags=["--skip-test"])
    part = list(ema)
    part[part.index("SOLVER.MAX_ITER") + 1] = "2"
    run("train_net.py", config, base / "ema_part", dataset, *part, flags=["--skip-test"])
    log = run("train_net.py", config, base / "ema_part", dataset, *ema, flags=["--skip-test"])
    assert "EMA: continuing the average of the checkpoint (2 updates)" in log
    whole = torch.load(base / "ema_whole" / "model_final.pth", weights_only=True)
    resumed = torch.load(base / "ema_part" / "model_final.pth", weights_only=True)
    assert resumed["ema"]["updates"] == whole["ema"]["updates"] == 4
    for name, value in whole["ema"]["weights"].items():
        assert torch.equal(resumed["ema"]["weights"][name], value), name
    # the official "model" key holds the trained weights; evaluations load the average
    assert any(not torch.equal(whole["model"][k], v) for k, v in whole["ema"]["weights"].items()
               if v.is_floating_point())
    few = ("MODEL.ATSS.INFERENCE_TH", "0.001")
    log = run("test_net.py", config, base / "ema_eval", dataset, "MODEL.WEIGHT",
              str(base / "ema_whole" / "model_final.pth"), *few)
    assert "holds an exponential moving average of the weights: loading the averaged ones" in log
    # test_net on the run's folder (no MODEL.WEIGHT) evaluates the average too, with the same numbers
    log_folder = run("test_net.py", config, base / "ema_whole", dataset, *few)
    assert "resuming from" in log_folder and "evaluating the averaged ones" in log_folder

    def metrics_of(folder):
        inference = folder / "inference"
        return json.loads((inference / os.listdir(inference)[0] / "coco_metrics.json").read_text())["bbox"]

    assert metrics_of(base / "ema_whole") == metrics_of(base / "ema_eval") and metrics_of(base / "ema_eval")["AP50"] > 0


def test_class_names_go_from_the_checkpoint_to_the_demo_and_test_net(files, tmp_path):
    base, dataset, config = files
    out = base / "names"
    run("train_net.py", config, out, dataset, "SOLVER.MAX_ITER", "1", "TENSORBOARD.ENABLED", "False",
        flags=["--skip-test"])
    weights = out / "model_final.pth"
    assert torch.load(weights, weights_only=True)["class_names"] == ["__background__", "green", "red"]
    images = base / "data" / "images"
    demo = [sys.executable, os.path.join(ROOT, "demo", "atss_demo.py"), "--config-file", config, "--weights",
            str(weights), "--input", str(images), "--confidence-threshold", "0.0", "--json"]
    few = ["MODEL.ATSS.INFERENCE_TH", "0.001"]  # an untrained model's detections score about 0.01
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run(demo + ["--output", str(tmp_path / "demo")] + few, cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    labels = {d["label"] for ds in json.loads((tmp_path / "demo" / "detections.json").read_text()).values()
              for d in ds}
    assert labels and labels <= {"green", "red"}
    # --class-names still overrides
    result = subprocess.run(demo + ["--output", str(tmp_path / "named"), "--class-names", "lime,ruby"] + few, cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    labels = {d["label"] for ds in json.loads((tmp_path / "named" / "detections.json").read_text()).values()
              for d in ds}
    assert labels and labels <= {"lime", "ruby"}
    # test_net: the per-class AP of the dataset's classes, and a warning when the checkpoint's differ
    log = run("test_net.py", config, tmp_path / "eval", dataset, "MODEL.WEIGHT", str(weights), *few)
    folder = tmp_path / "eval" / "inference" / os.listdir(tmp_path / "eval" / "inference")[0]
    assert set(json.loads((folder / "coco_metrics.json").read_text())["per_class"]) == {"green", "red"}
    assert "class names differ" not in log
    renamed = torch.load(weights, weights_only=True)
    renamed["class_names"] = ["__background__", "red", "green"]
    torch.save(renamed, tmp_path / "swapped.pth")
    log = run("test_net.py", config, tmp_path / "eval_swapped", dataset, "MODEL.WEIGHT", str(tmp_path / "swapped.pth"))
    assert "the model's class names differ from those of" in log and "label 1: model 'red', dataset 'green'" in log


def killer_env(tmp_path, signal_name, at):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(KILL_AFTER_EVALUATION)
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(site), ROOT]),
                KILL_MARKER=str(tmp_path / "killed_once"), KILL_AT_EVALUATION=str(at), KILL_SIGNAL=signal_name)


def test_a_stop_signal_after_an_evaluation_saves_and_the_resumed_run_goes_on(files, tmp_path):
    base, dataset, config = files
    out = tmp_path / "stopped"
    command = [sys.executable, os.path.join(ROOT, "tools", "train_net.py"), "--config-file", config, "--skip-test",
               "OUTPUT_DIR", str(out), "DATASETS.TRAIN", "('{}',)".format(dataset), "DATASETS.TEST",
               "('{}',)".format(dataset), *PERIODIC, "SOLVER.CHECKPOINT_PERIOD", "10"]
    env = killer_env(tmp_path, "SIGTERM", 2)
    first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 143, first.stderr[-3000:]
    assert "model_0000003.pth" in (out / "last_checkpoint").read_text()  # the iteration after the signal
    assert torch.load(out / "model_0000003.pth", weights_only=True)["best"]["iteration"] == 2
    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert [r["iteration"] for r in evaluations(out)] == [2, 4, 5]


def test_a_worker_killed_under_torchrun_max_restarts_resumes_with_each_evaluation_once(files, tmp_path):
    from .test_train_test_net import free_port

    base, dataset, config = files
    out = tmp_path / "restarted"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--max-restarts=1",
               "--master_port={}".format(free_port()), "--log-dir", str(tmp_path / "torchrun_logs"),
               os.path.join(ROOT, "tools", "train_net.py"), "--config-file", config, "--skip-test",
               "OUTPUT_DIR", str(out), "DATASETS.TRAIN", "('{}',)".format(dataset), "DATASETS.TEST",
               "('{}',)".format(dataset), *PERIODIC, "SOLVER.CHECKPOINT_PERIOD", "3"]
    result = subprocess.run(command, cwd=ROOT, env=killer_env(tmp_path, "SIGKILL", 4), capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "killed_once").exists()  # rank 0 did die after the evaluation of iteration 4
    assert "resuming from" in result.stdout + result.stderr
    assert [r["iteration"] for r in evaluations(out)] == [2, 4, 5]
    assert torch.load(out / "model_best.pth", weights_only=True)["best"]["iteration"] in (2, 4, 5)
