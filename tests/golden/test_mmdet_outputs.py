"""mmdetection's ATSS run here gives mmdetection's detections.

tests/data/mmdet/ holds an mmdetection checkpoint (atss_r50_fpn_1x_coco narrowed to 8 base
channels, seeded random weights) and what mmdetection 3.3.0 itself computed with it on three
shipped photographs (recorded by tools/dev/record_mmdet_outputs.py): the resized image, the
network input, the head outputs of the first image and the final detections. With
configs/mmdet/atss_r50_fpn_1x_coco.yaml (narrowed the same way) the checkpoint must give the
same detections: same labels, scores within 1e-5, boxes within 1e-3 px, in the demo predictor,
the demo's --json output and test_net's COCO results file."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.data.datasets.image_io import read_image_bgr

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "mmdet")
IMAGES = os.path.join(ROOT, "data", "raccoon", "JPEGImages")
CHECKPOINT = os.path.join(DATA, "atss_r50_narrow_mmdet.pth")
CONFIG = os.path.join(ROOT, "configs", "mmdet", "atss_r50_fpn_1x_coco.yaml")
# the recorder's narrowing of atss_r50_fpn_1x_coco: 8 base channels, FPN and head 32 wide
NARROW = ["MODEL.RESNETS.STEM_OUT_CHANNELS", "8", "MODEL.RESNETS.RES2_OUT_CHANNELS", "32",
          "MODEL.RESNETS.WIDTH_PER_GROUP", "8", "MODEL.RESNETS.BACKBONE_OUT_CHANNELS", "32", "MODEL.DEVICE", "cpu"]
SCORE_TOL = 1e-5
BOX_TOL = 1e-3

pytestmark = pytest.mark.skipif(not os.path.isdir(IMAGES), reason="the shipped photographs (data/raccoon) are missing")


@pytest.fixture(scope="module")
def recorded():
    return torch.load(os.path.join(DATA, "outputs.pth"), weights_only=True)


def narrow_cfg(*opts):
    cfg = default_cfg.clone()
    cfg.merge_from_file(CONFIG)
    cfg.merge_from_list(NARROW + ["MODEL.WEIGHT", CHECKPOINT] + list(opts))
    return cfg


def assert_same_detections(boxes, scores, labels, record):
    """Ours (labels 1..80) against mmdetection's (0..79): the same set, matched greedily by
    label, score and box, in mmdetection's order."""
    expected_boxes, expected_scores, expected_labels = record["boxes"], record["scores"], record["labels"] + 1
    assert len(scores) == len(expected_scores), (len(scores), len(expected_scores))
    unmatched = list(range(len(scores)))
    for box, score, label in zip(expected_boxes, expected_scores, expected_labels):
        match = [i for i in unmatched if int(labels[i]) == int(label) and abs(float(scores[i]) - float(score)) <= SCORE_TOL
                 and float((torch.as_tensor(boxes[i]) - box).abs().max()) <= BOX_TOL]
        assert match, "mmdetection's detection label {} score {:.6f} box {} has no counterpart".format(
            int(label), float(score), box.tolist())
        unmatched.remove(match[0])


def test_the_resized_image_and_the_network_input_are_mmdetections(recorded):
    from atss_core.data.transforms import build_transforms

    transforms = build_transforms(narrow_cfg(), is_train=False)
    resize = transforms.transforms[0]
    for record in recorded["images"]:
        image = read_image_bgr(os.path.join(IMAGES, record["file_name"]), exif_orientation=True)
        assert image.shape[:2] == tuple(record["ori_shape"])
        resized, _ = resize(image)
        assert resized.shape[:2] == tuple(record["img_shape"]), record["file_name"]
        assert np.array_equal(resized[::8, ::8], record["resized_bgr_sample"].numpy()), record["file_name"]
        assert torch.equal(torch.from_numpy(resized).double().sum(dim=(0, 1)), record["resized_bgr_sums"])
        tensor, _ = transforms(image)
        assert torch.allclose(tensor.double().sum(dim=(1, 2)), record["input_channel_sums"], rtol=1e-6)


def test_head_outputs_match_mmdetections(recorded):
    from atss_core.data.transforms import build_transforms
    from atss_core.modeling.detector import build_detection_model
    from atss_core.structures.image_list import to_image_list
    from atss_core.utils.checkpoint import DetectronCheckpointer

    cfg = narrow_cfg()
    model = build_detection_model(cfg).eval()
    DetectronCheckpointer(cfg, model).load(CHECKPOINT, use_latest=False, strict=True)
    record = recorded["images"][0]
    image = read_image_bgr(os.path.join(IMAGES, record["file_name"]), exif_orientation=True)
    tensor, _ = build_transforms(cfg, is_train=False)(image)
    images = to_image_list([tensor], cfg.DATALOADER.SIZE_DIVISIBILITY)
    assert tuple(images.tensors.shape) == tuple(record["input_shape"])
    with torch.no_grad():
        features = model.backbone(images.tensors)
        box_cls, box_regression, centerness = model.rpn.head(features)
    for level, (cls, regression, ctr, expected) in enumerate(zip(box_cls, box_regression, centerness,
                                                                  record["head"])):
        assert torch.allclose(cls[0].max(dim=0).values, expected["max_logit"], atol=1e-4), level
        assert torch.allclose(regression[0], expected["deltas"], atol=1e-4), level
        assert torch.allclose(ctr[0, 0], expected["centerness"], atol=1e-4), level


@pytest.mark.parametrize("optimize", [False, True])
def test_detections_match_mmdetections(recorded, optimize):
    from atss_core.engine.predictor import ATSSDemo

    demo = ATSSDemo(narrow_cfg("TEST.OPTIMIZE_FOR_INFERENCE", str(optimize)), confidence_threshold=0.0)
    for record in recorded["images"]:
        image = read_image_bgr(os.path.join(IMAGES, record["file_name"]), exif_orientation=True)
        prediction = demo.compute_prediction(image)
        assert_same_detections(prediction.bbox, prediction.get_field("scores"), prediction.get_field("labels"),
                               record)
        # mmdetection's order: by descending score
        scores = prediction.get_field("scores")
        assert torch.equal(scores, scores.sort(descending=True).values)


def test_the_onnx_export_gives_mmdetections_detections(recorded, tmp_path):
    """The exported graph (mmdetection's post-processing: cls ranking, cls x centerness,
    class-wise NMS without +1) on the 225 x 225 photograph, whose 800 x 800 input needs no
    padding, run by onnxruntime: mmdetection's detections once mapped back to the photograph;
    then the ONNX demo (the same graph) on all three photographs."""
    onnxruntime = pytest.importorskip("onnxruntime")
    from atss_core.data.transforms import build_transforms
    from atss_core.export import onnx as export_onnx

    cfg = narrow_cfg("TEST.OPTIMIZE_FOR_INFERENCE", "False")
    model = export_onnx.build_model(cfg)
    path = str(tmp_path / "mmdet.onnx")
    export_onnx.export(model, cfg, path, 800, 800)
    record = next(r for r in recorded["images"] if r["img_shape"] == (800, 800))
    image = read_image_bgr(os.path.join(IMAGES, record["file_name"]), exif_orientation=True)
    tensor, _ = build_transforms(cfg, is_train=False)(image)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    boxes, scores, labels, counts = session.run(None, {"images": tensor[None].numpy()})
    count = int(counts[0])
    scale = torch.tensor([record["ori_shape"][1] / 800, record["ori_shape"][0] / 800] * 2)
    assert_same_detections(torch.from_numpy(boxes[0, :count]) * scale, scores[0, :count].tolist(),
                           labels[0, :count].tolist(), record)
    # the ONNX demo on all three (two padded; their boxes that reach the right or bottom edge
    # end at W and H, not W - 1 and H - 1)
    from atss_core.export.predictor import ONNXDemo

    demo = ONNXDemo(cfg, path, confidence_threshold=0.0)
    for record in recorded["images"]:
        image = read_image_bgr(os.path.join(IMAGES, record["file_name"]), exif_orientation=True)
        prediction = demo.compute_prediction(image)
        assert_same_detections(prediction.bbox, prediction.get_field("scores"), prediction.get_field("labels"),
                               record)
