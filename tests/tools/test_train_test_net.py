"""train_net.py / test_net.py end to end on a tiny generated COCO set (CPU)."""
import json
import os
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    """A port nothing listens on now (a fixed one collides with another run on the machine)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TINY_MODEL = """
MODEL:
  DEVICE: "cpu"
  RPN_ONLY: True
  ATSS_ON: True
  BACKBONE:
    CONV_BODY: "R-50-FPN-RETINANET"
    FREEZE_CONV_BODY_AT: 0
  RESNETS:
    STEM_FUNC: "StemWithGN"
    TRANS_FUNC: "BottleneckWithGN"
    STEM_OUT_CHANNELS: 32
    RES2_OUT_CHANNELS: 32
    WIDTH_PER_GROUP: 32
    BACKBONE_OUT_CHANNELS: 64  # the head's GroupNorm(32) needs 2+ values per group on a 1x1 P7
  GROUP_NORM:
    NUM_GROUPS: 8
  RETINANET:
    USE_C5: False
  ATSS:
    NUM_CLASSES: 3
    NUM_CONVS: 1
    ANCHOR_SIZES: (16, 32, 64, 128, 256)
INPUT:
  MIN_SIZE_TRAIN: (64,)
  MAX_SIZE_TRAIN: 100
  MIN_SIZE_TEST: 64
  MAX_SIZE_TEST: 100
DATALOADER:
  NUM_WORKERS: 0
  SIZE_DIVISIBILITY: 32
SOLVER:
  BASE_LR: 0.01
  WEIGHT_DECAY: 0.0001
  STEPS: (3,)
  MAX_ITER: 4
  IMS_PER_BATCH: 2
  WARMUP_ITERS: 2
  CHECKPOINT_PERIOD: 2
TEST:
  IMS_PER_BATCH: 2
"""


def make_dataset(folder, n=6, size=64, seed=0):
    rng = np.random.RandomState(seed)
    (folder / "images").mkdir(parents=True)
    images, annotations = [], []
    for i in range(n):
        image = (rng.rand(size, size, 3) * 60).astype(np.uint8)
        for j in range(2):
            label = 1 + (i + j) % 2
            w, h = rng.randint(12, 28, size=2)
            x, y = rng.randint(0, size - 28, size=2)
            image[y:y + h, x:x + w] = (0, 220, 0) if label == 1 else (0, 0, 220)
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": label,
                                "bbox": [int(x), int(y), int(w), int(h)], "area": int(w * h), "iscrowd": 0})
        cv2.imwrite(str(folder / "images" / "{}.png".format(i)), image)
        images.append({"id": i + 1, "file_name": "{}.png".format(i), "width": size, "height": size})
    categories = [{"id": 1, "name": "green"}, {"id": 2, "name": "red"}]
    (folder / "ann.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                 "categories": categories}))
    return "coco:{}:{}".format(folder / "images", folder / "ann.json")


@pytest.fixture(scope="module")
def setup_files(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    dataset = make_dataset(base / "data")
    config = base / "tiny.yaml"
    config.write_text(TINY_MODEL)
    return base, dataset, str(config)


def run(script, config, output_dir, dataset, *extra, flags=(), launcher=None, timeout=600):
    command = [sys.executable, os.path.join(ROOT, "tools", script), "--config-file", config, *flags,
               "OUTPUT_DIR", str(output_dir), "DATASETS.TRAIN", "('{}',)".format(dataset),
               "DATASETS.TEST", "('{}',)".format(dataset), *extra]
    if launcher:
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                   "--master_port={}".format(free_port()),
                   "--log-dir", str(output_dir) + "_torchrun_logs", *command[1:]]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_train_checkpoint_resume_and_evaluate(setup_files):
    base, dataset, config = setup_files
    out = base / "single"
    log = run("train_net.py", config, out, dataset, "SOLVER.MAX_ITER", "2", flags=["--skip-test"])
    assert "iter: 2/2" in log and (out / "model_final.pth").exists()
    assert torch.load(out / "model_final.pth", weights_only=False)["iteration"] == 2
    # a second run with a larger MAX_ITER resumes at iteration 3 from last_checkpoint
    log = run("train_net.py", config, out, dataset, "SOLVER.MAX_ITER", "4")
    assert "resuming from" in log and "start training at iteration 2 of 4" in log and "iter: 4/4" in log
    assert "iter: 3/4" in log
    assert (out / "model_0000002.pth").exists() or (out / "model_final.pth").exists()
    metrics = json.loads((out / "inference" / os.listdir(out / "inference")[0] / "coco_metrics.json").read_text())
    assert set(metrics["bbox"]) == {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    assert set(metrics["per_class"]) <= {"green", "red"}
    assert (out / "config.yml").exists() and (out / "log.txt").exists()
    # test_net on the trained weights gives the same metrics
    log = run("test_net.py", config, base / "eval", dataset, "MODEL.WEIGHT", str(out / "model_final.pth"))
    again = json.loads((base / "eval" / "inference" / os.listdir(base / "eval" / "inference")[0]
                        / "coco_metrics.json").read_text())
    assert again["bbox"] == pytest.approx(metrics["bbox"])
    # MODEL.WEIGHT pointing at the configs' ImageNet backbone weights: the run in OUTPUT_DIR is
    # evaluated (as the official test_net would)
    log = run("test_net.py", config, out, dataset, "MODEL.WEIGHT", "catalog://ImageNetPretrained/MSRA/R-50")
    assert "resuming from {}".format(out / "model_final.pth") in log
    # the multi-scale + flip test, merged by soft voting and by plain NMS of the raw boxes
    for vote in ("True", "False"):
        tta = base / "tta_vote_{}".format(vote)
        log = run("test_net.py", config, tta, dataset, "MODEL.WEIGHT", str(out / "model_final.pth"),
                  "TEST.BBOX_AUG.ENABLED", "True", "TEST.BBOX_AUG.H_FLIP", "True", "TEST.BBOX_AUG.SCALES", "(48, 96)",
                  "TEST.BBOX_AUG.MAX_SIZE", "160", "TEST.BBOX_AUG.SCALE_H_FLIP", "True",
                  "TEST.BBOX_AUG.VOTE", vote, "TEST.BBOX_AUG.MERGE_TYPE", "soft-vote")
        assert "test-time augmentation: 6 runs per image" in log
        folder = tta / "inference" / os.listdir(tta / "inference")[0]
        predictions = torch.load(folder / "predictions.pth", weights_only=False)
        assert [p.size for p in predictions] == [(64, 64)] * 6
        # officially the vote path caps at MODEL.ATSS.PRE_NMS_TOP_N, the NMS path at TEST.DETECTIONS_PER_IMG
        assert all(len(p) <= (1000 if vote == "True" else 100) for p in predictions)
        assert set(json.loads((folder / "coco_metrics.json").read_text())["bbox"]) >= {"AP", "AP50"}


def test_two_process_gloo_training_with_torchrun(setup_files):
    base, dataset, config = setup_files
    out = base / "ddp"
    log = run("train_net.py", config, out, dataset, "SOLVER.MAX_ITER", "2", launcher="torchrun")
    assert "with 2 process(es)" in log and "iter: 2/2" in log
    assert (out / "model_final.pth").exists() and (out / "last_checkpoint").exists()
    folder = out / "inference" / os.listdir(out / "inference")[0]
    assert (folder / "bbox.json").exists() and (folder / "predictions.pth").exists()
    assert len(torch.load(folder / "predictions.pth", weights_only=False)) == 6  # every image, once, in order


def test_fine_tuning_from_a_coco_checkpoint_starts_at_iteration_zero(setup_files):
    """A checkpoint of an 81-class model (with optimizer state and iteration 90000) as
    MODEL.WEIGHT for a 3-class model: compatible weights load, the class layer is
    re-initialised and listed in the log, and training starts at iteration 0."""
    from atss_core.config import cfg as default_cfg
    from atss_core.modeling.detector import build_detection_model

    base, dataset, config = setup_files
    cfg = default_cfg.clone()
    cfg.merge_from_file(config)
    cfg.merge_from_list(["MODEL.ATSS.NUM_CLASSES", 81])
    torch.manual_seed(3)
    coco_model = build_detection_model(cfg)
    torch.save({"model": coco_model.state_dict(), "optimizer": {"state": {}, "param_groups": []},
                "iteration": 90000}, base / "coco81.pth")
    out = base / "finetune"
    log = run("train_net.py", config, out, dataset, "MODEL.WEIGHT", str(base / "coco81.pth"), "SOLVER.MAX_ITER", "1",
              "SOLVER.BASE_LR", "0.0", flags=["--skip-test"])
    assert "start training at iteration 0 of 1" in log and "iter: 1/1" in log
    assert "rpn.head.cls_logits.weight model (2, 64, 3, 3) vs checkpoint (80, 64, 3, 3)" in log
    tuned = torch.load(out / "model_final.pth", weights_only=False)["model"]
    for key, value in coco_model.state_dict().items():
        if "cls_logits" in key:
            continue
        assert torch.equal(tuned[key], value), key  # lr 0: still the checkpoint's values
    expected_bias = -torch.log(torch.tensor((1 - 0.01) / 0.01))
    assert torch.allclose(tuned["rpn.head.cls_logits.bias"], expected_bias.expand(2))


def test_resumed_run_logs_the_same_learning_rate_as_an_uninterrupted_one(setup_files):
    base, dataset, config = setup_files
    extra = ("SOLVER.MAX_ITER", "4", "SOLVER.STEPS", "(3,)", "SOLVER.WARMUP_ITERS", "2", "SOLVER.CHECKPOINT_PERIOD", "2")
    full = run("train_net.py", config, base / "lr_full", dataset, *extra, flags=["--skip-test"])
    run("train_net.py", config, base / "lr_part", dataset, *extra[:1], "2", *extra[2:], flags=["--skip-test"])
    resumed = run("train_net.py", config, base / "lr_part", dataset, *extra, flags=["--skip-test"])

    def lr_at(log, iteration):
        line = [l for l in log.splitlines() if "iter: {}/4".format(iteration) in l][0]
        return line.split("lr: ")[1].split()[0]

    # the uninterrupted run logs iterations 1 and 4, the resumed one 3 and 4
    assert lr_at(resumed, 4) == lr_at(full, 4)
    # iteration i runs at the schedule of i - 1 (the official order with PyTorch >= 1.1):
    # STEPS (3,) decays from iteration 4, and iteration 1 starts at WARMUP_FACTOR
    assert float(lr_at(full, 4)) == pytest.approx(0.001)
    assert float(lr_at(resumed, 3)) == pytest.approx(0.01)
    assert float(lr_at(full, 1)) == pytest.approx(0.01 / 3, abs=1e-6)
    assert "start training at iteration 2 of 4" in resumed
