import numpy as np
import pytest
import torch

from atss_core.modeling.detector import build_detection_model

from ..modeling.test_training import tiny_cfg

from atss_core.engine.predictor import ATSSDemo, default_class_names, parse_class_names


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    cfg = tiny_cfg()
    cfg.merge_from_list(["INPUT.MIN_SIZE_TEST", 64, "INPUT.MAX_SIZE_TEST", 128, "DATALOADER.SIZE_DIVISIBILITY", 32,
                         "MODEL.RESNETS.BACKBONE_OUT_CHANNELS", 64,  # GroupNorm(32): 2+ values per group
                         "MODEL.ATSS.INFERENCE_TH", 0.0])  # an untrained head scores about PRIOR_PROB
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "tiny.pth"
    torch.save({"model": build_detection_model(cfg).state_dict()}, path)
    return ATSSDemo(cfg, weights=str(path), confidence_threshold=0.0, class_names=("__bg__", "red", "green"))


def test_detections_are_in_the_input_frame_and_drawn(demo):
    image = (np.random.RandomState(0).rand(90, 150, 3) * 255).astype(np.uint8)
    annotated, predictions = demo.run_on_opencv_image(image)
    assert annotated.shape == image.shape and annotated.dtype == np.uint8
    assert predictions.size == (150, 90) and len(predictions) > 0
    assert not np.array_equal(annotated, image)  # boxes were drawn
    scores = predictions.get_field("scores")
    assert torch.all(scores[:-1] >= scores[1:])


def test_per_class_thresholds(demo):
    image = (np.random.RandomState(1).rand(64, 64, 3) * 255).astype(np.uint8)
    everything = demo.compute_prediction(image)
    demo.thresholds = demo._thresholds({"red": 2.0}, default_threshold=0.0)  # no red can pass
    try:
        kept = demo.select_top_predictions(everything)
    finally:
        demo.thresholds = demo._thresholds(0.0, 0.0)
    assert (kept.get_field("labels") != 1).all()
    assert len(kept) == int((everything.get_field("labels") == 2).sum())


def test_bad_images_are_rejected(demo):
    with pytest.raises(ValueError, match="expected an HxWx3 BGR image"):
        demo.compute_prediction(np.zeros((10, 10), dtype=np.uint8))


def test_default_class_names_are_coco_for_81_classes():
    names = default_class_names(81)
    assert len(names) == 81 and names[0] == "__background__"
    assert (names[1], names[3], names[80]) == ("person", "car", "toothbrush") and len(set(names)) == 81
    assert default_class_names(3) == ["__background__", "class 1", "class 2"]


def test_class_names_from_the_command_line_get_the_background_first():
    assert parse_class_names(" raccoon , cat") == ["__background__", "raccoon", "cat"]
    assert parse_class_names("") is None


def test_tiled_prediction_is_in_the_input_frame(demo, monkeypatch):
    """TEST.TILE in the predictor: the whole image and its tiles go through the model, the
    merged detections are in the input image's frame, within it."""
    image = (np.random.RandomState(3).rand(150, 260, 3) * 255).astype(np.uint8)
    monkeypatch.setattr(demo, "cfg", demo.cfg.clone())
    demo.cfg.merge_from_list(["TEST.TILE.ENABLED", True, "TEST.TILE.SIZE", 96, "TEST.TILE.OVERLAP", 0.25])
    seen = []
    original = demo.model.forward
    monkeypatch.setattr(demo.model, "forward", lambda images: seen.append(images.tensors.shape) or original(images))
    predictions = demo.compute_prediction(image)
    assert predictions.size == (260, 150) and len(predictions) > 0
    assert float(predictions.bbox[:, 2].max()) <= 260 and float(predictions.bbox[:, 3].max()) <= 150
    # the whole image, then 4 x 2 tiles of 96 px in batches of at most 4
    assert len(seen) == 1 + 2 and sum(shape[0] for shape in seen) == 1 + 8
