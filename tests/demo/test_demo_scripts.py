import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.data.datasets.image_io import list_images, open_video
from atss_core.modeling.detector import build_detection_model

from ..tools.test_train_test_net import TINY_MODEL

DEMO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "demo")


def run_demo(script, *args):
    """Runs demo/<script> as a user does; returns the CompletedProcess."""
    return subprocess.run([sys.executable, os.path.join(DEMO_DIR, script), *args], capture_output=True, text=True,
                          timeout=300)

OVERRIDES = ["MODEL.ATSS.INFERENCE_TH", "0.0"]  # an untrained head scores about PRIOR_PROB


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    config = folder / "tiny.yaml"
    config.write_text(TINY_MODEL)
    cfg = default_cfg.clone()
    cfg.merge_from_file(str(config))
    torch.manual_seed(0)
    torch.save({"model": build_detection_model(cfg).state_dict()}, folder / "w.pth")
    return folder, str(config), str(folder / "w.pth")


def test_image_folder_demo_writes_annotated_images_and_json(model_files, capsys):
    folder, config, weights = model_files
    images = folder / "images"
    images.mkdir()
    for i in range(2):
        cv2.imwrite(str(images / "{}.png".format(i)), (np.random.RandomState(i).rand(70, 90, 3) * 255).astype(np.uint8))
    (images / "notes.txt").write_text("not an image")
    out = folder / "out"
    result = run_demo("atss_demo.py", "--config-file", config, "--weights", weights, "--input", str(images),
                      "--output", str(out), "--confidence-threshold", "0.0", "--class-names", "green,red", "--json",
                      *OVERRIDES)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(os.listdir(out)) == ["0.png", "1.png", "detections.json"]
    assert cv2.imread(str(out / "0.png")).shape == (70, 90, 3)
    records = json.loads((out / "detections.json").read_text())
    assert len(records["0.png"]) > 0 and {r["label"] for r in records["0.png"]} <= {"green", "red"}
    missing = run_demo("atss_demo.py", "--config-file", config, "--weights", weights, "--input", str(folder / "nope"),
                       "--output", str(out))
    assert missing.returncode == 1 and "error: input not found" in missing.stderr and "Traceback" not in missing.stderr


def test_image_lists_name_what_is_missing(tmp_path):
    (tmp_path / "b.JPG").write_bytes(b"")
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("x")
    assert list_images(str(tmp_path)) == [str(tmp_path / "a.png"), str(tmp_path / "b.JPG")]
    assert list_images(str(tmp_path / "a.png")) == [str(tmp_path / "a.png")]
    with pytest.raises(FileNotFoundError, match="input not found"):
        list_images(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no image .* in"):
        list_images(str(tmp_path / "empty"))


def test_video_file_demo_writes_an_annotated_video_headless(model_files):
    folder, config, weights = model_files
    video = folder / "in.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (96, 64))
    for i in range(5):
        writer.write((np.random.RandomState(i).rand(64, 96, 3) * 255).astype(np.uint8))
    writer.release()
    out = folder / "out.mp4"
    result = run_demo("webcam.py", "--config-file", config, "--weights", weights, "--video-input", str(video),
                      "--output", str(out), "--no-display", "--max-frames", "3", *OVERRIDES)
    assert result.returncode == 0, result.stderr[-2000:]
    capture = cv2.VideoCapture(str(out))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 3


def test_missing_camera_and_video_are_clear_errors(model_files):
    folder, config, weights = model_files
    with pytest.raises(FileNotFoundError, match="video file not found"):
        open_video(str(folder / "missing.mp4"))
    with pytest.raises(ValueError, match="could not open camera 7"):
        open_video(camera=7)
    result = run_demo("webcam.py", "--config-file", config, "--weights", weights, "--no-display")
    assert result.returncode == 1 and "error: --no-display needs --output" in result.stderr
