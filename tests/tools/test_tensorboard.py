"""TensorBoard event files: the training scalars read back equal the training history, and
an evaluation writes its metrics, per-class AP and pictures; TENSORBOARD.ENABLED False
writes nothing."""
import glob
import logging
import os

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from atss_core.config import cfg as default_cfg
from atss_core.data.build import make_data_loader
from atss_core.engine.inference import inference
from atss_core.engine.tensorboard import make_tracker
from tests.tools.test_train_test_net import TINY_MODEL, make_dataset

from atss_core.engine.defaults import train


def tiny_cfg(tmp_path, *extra):
    dataset = make_dataset(tmp_path / "data", n=4)
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_MODEL)
    cfg = default_cfg.clone()
    cfg.merge_from_file(str(config))
    cfg.merge_from_list(["DATASETS.TRAIN", (dataset,), "DATASETS.TEST", (dataset,), "SOLVER.MAX_ITER", 3,
                         "SOLVER.CHECKPOINT_PERIOD", 0, "SEED", 3, "OUTPUT_DIR", str(tmp_path / "out"),
                         "MODEL.ATSS.INFERENCE_TH", 0.0, *extra])
    cfg.freeze()
    return cfg


def read_events(folder):
    files = glob.glob(os.path.join(folder, "events.out.tfevents.*"))
    assert files, "no event file in {}".format(folder)
    accumulator = EventAccumulator(folder, size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    return accumulator


def test_training_and_evaluation_scalars_and_pictures_are_logged(tmp_path):
    cfg = tiny_cfg(tmp_path)
    logger = logging.getLogger("atss_core.test_tensorboard")
    history = []
    tracker = make_tracker(cfg)
    model = train(cfg, 0, False, logger, history=history, tracker=tracker)
    (loader,) = make_data_loader(cfg, is_train=False)
    report = inference(model, loader, "tiny", device=torch.device("cpu"), logger=logger, tracker=tracker, iteration=3)
    tracker.close()

    events = read_events(cfg.OUTPUT_DIR)
    tags = events.Tags()["scalars"]
    for key in ("loss_cls", "loss_reg", "loss_centerness"):
        logged = events.Scalars("train/" + key)
        assert [e.step for e in logged] == [1, 2, 3]
        assert [e.value for e in logged] == pytest.approx([h[key] for h in history], rel=1e-6)
    totals = [h["loss_cls"] + h["loss_reg"] + h["loss_centerness"] for h in history]
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx(totals, rel=1e-6)
    assert [e.value for e in events.Scalars("train_stats/lr")] == pytest.approx([h["lr"] for h in history])
    assert [e.value for e in events.Scalars("train_stats/data")] == pytest.approx([h["data"] for h in history],
                                                                                 rel=1e-5)
    assert all(e.value > 0 for e in events.Scalars("train_stats/memory_mb"))
    for metric in ("AP", "AP50", "AP75", "APs", "APm", "APl"):
        (logged,) = events.Scalars("eval_tiny/" + metric)
        assert logged.step == 3 and logged.value == pytest.approx(report["bbox"][metric], abs=1e-7)
    per_class = [t for t in tags if t.startswith("eval_tiny_per_class/")]
    assert sorted(per_class) == ["eval_tiny_per_class/green", "eval_tiny_per_class/red"]
    images = events.Tags()["images"]
    assert len(images) == cfg.TENSORBOARD.NUM_IMAGES
    (picture,) = events.Images(images[0])
    assert (picture.width, picture.height) == (64, 64)


def test_tracking_can_be_turned_off(tmp_path):
    cfg = tiny_cfg(tmp_path, "TENSORBOARD.ENABLED", False)
    tracker = make_tracker(cfg)
    train(cfg, 0, False, logging.getLogger("atss_core.test_tensorboard"), tracker=tracker)
    tracker.close()
    assert os.path.isfile(os.path.join(cfg.OUTPUT_DIR, "model_final.pth"))
    assert not glob.glob(os.path.join(cfg.OUTPUT_DIR, "events.out.tfevents.*"))


@pytest.mark.parametrize("exif_orientation, shown", [(True, (24, 40)), (False, (40, 24))])
def test_pictures_are_drawn_on_the_pixels_the_predictions_were_made_on(tmp_path, exif_orientation, shown):
    """A photograph stored 40 x 24 with EXIF orientation 6 (turn 90 degrees): with
    INPUT.EXIF_ORIENTATION (the dataset's exif_orientation) the model saw it 24 x 40."""
    from types import SimpleNamespace

    import numpy as np
    from PIL import Image

    from atss_core.engine.tensorboard import TensorboardTracker
    from atss_core.structures import BoxList

    path = str(tmp_path / "turned.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.zeros((24, 40, 3), np.uint8)).save(path, exif=exif.tobytes())
    dataset = SimpleNamespace(image_path=lambda index: path, exif_orientation=exif_orientation, categories={})
    prediction = BoxList(torch.zeros(0, 4), shown)
    prediction.add_field("scores", torch.zeros(0))
    prediction.add_field("labels", torch.zeros(0, dtype=torch.int64))
    tracker = TensorboardTracker(str(tmp_path / "events"), num_images=1)
    tracker.log_evaluation("tiny", {}, 1, dataset=dataset, predictions=[prediction])
    tracker.close()
    events = read_events(str(tmp_path / "events"))
    (picture,) = events.Images(events.Tags()["images"][0])
    assert (picture.width, picture.height) == shown
