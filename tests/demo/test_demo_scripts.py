import json
import os
import sys

import cv2
import numpy as np
import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.modeling.detector import build_detection_model

from ..tools.test_train_test_net import TINY_MODEL

DEMO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "demo")
sys.path.insert(0, DEMO_DIR)
import atss_demo  # noqa: E402
import webcam  # noqa: E402

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
    atss_demo.main(["--config-file", config, "--weights", weights, "--input", str(images), "--output", str(out),
                    "--confidence-threshold", "0.0", "--class-names", "green,red", "--json", *OVERRIDES])
    assert sorted(os.listdir(out)) == ["0.png", "1.png", "detections.json"]
    assert cv2.imread(str(out / "0.png")).shape == (70, 90, 3)
    records = json.loads((out / "detections.json").read_text())
    assert len(records["0.png"]) > 0 and {r["label"] for r in records["0.png"]} <= {"green", "red"}
    with pytest.raises(SystemExit, match="input not found"):
        atss_demo.main(["--config-file", config, "--weights", weights, "--input", str(folder / "nope"),
                        "--output", str(out)])


def test_video_file_demo_writes_an_annotated_video_headless(model_files):
    folder, config, weights = model_files
    video = folder / "in.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (96, 64))
    for i in range(5):
        writer.write((np.random.RandomState(i).rand(64, 96, 3) * 255).astype(np.uint8))
    writer.release()
    out = folder / "out.mp4"
    webcam.main(["--config-file", config, "--weights", weights, "--video-input", str(video), "--output", str(out),
                 "--no-display", "--max-frames", "3", *OVERRIDES])
    capture = cv2.VideoCapture(str(out))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 3


def test_missing_camera_and_video_are_clear_errors(model_files):
    folder, config, weights = model_files
    with pytest.raises(SystemExit, match="video file not found"):
        webcam.main(["--config-file", config, "--weights", weights, "--video-input", str(folder / "missing.mp4"),
                     "--output", str(folder / "x.mp4"), "--no-display"])
    with pytest.raises(SystemExit, match="could not open camera 7"):
        webcam.main(["--config-file", config, "--weights", weights, "--camera", "7", "--output",
                     str(folder / "x.mp4"), "--no-display"])
    with pytest.raises(SystemExit, match="--no-display needs --output"):
        webcam.main(["--config-file", config, "--weights", weights, "--no-display"])
