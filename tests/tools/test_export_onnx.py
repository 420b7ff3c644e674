"""tools/export_onnx.py: the exported graph, run by onnxruntime at sizes other than the one
it was traced at, agrees with the eager model; DCN configs are refused by name; the ONNX
demo predictor gives the eager predictor's detections."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import ROOT
from tests.utils.test_checkpoint import tiny_model

sys.path.insert(0, os.path.join(ROOT, "tools"))
sys.path.insert(0, os.path.join(ROOT, "demo"))
import export_onnx  # noqa: E402

onnxruntime = pytest.importorskip("onnxruntime")


def detector_with_spread_scores(seed=1):
    """The tiny model with head weights that give many candidates above INFERENCE_TH, so the
    threshold, the per-level top-n and the NMS all matter."""
    cfg, model = tiny_model()
    model.eval()
    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        head = model.rpn.head
        head.cls_logits.weight.copy_(torch.randn(head.cls_logits.weight.shape, generator=generator) * 0.2)
        head.cls_logits.bias.fill_(-3.5)
        head.bbox_pred.weight.copy_(torch.randn(head.bbox_pred.weight.shape, generator=generator) * 0.05)
    return cfg, model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cfg, model = detector_with_spread_scores()
    path = str(tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    export_onnx.export(model, cfg, path, 256, 320)
    return cfg, model, onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"]), path


@pytest.mark.parametrize("height, width, batch", [(256, 320, 1), (192, 288, 2), (384, 256, 1)])
def test_onnxruntime_agrees_with_the_eager_model(exported, height, width, batch):
    cfg, model, session, _ = exported
    images = torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(height)) * 40
    eager = export_onnx.eager_detections(model, images)
    onnx = export_onnx.onnx_detections(session, images)
    for ours, theirs in zip(eager, onnx):
        fraction, eager_count, onnx_count = export_onnx.agreement(ours, theirs)
        assert eager_count > 20 and 0 < ours[1].min() < ours[1].max()  # a real selection, not everything
        assert fraction >= 0.95 and abs(eager_count - onnx_count) <= 2, (fraction, eager_count, onnx_count)


def test_outputs_are_padded_to_the_detection_cap(exported):
    cfg, model, session, _ = exported
    boxes, scores, labels, counts = session.run(None, {"images": np.zeros((2, 3, 128, 160), np.float32)})
    cap = cfg.TEST.DETECTIONS_PER_IMG
    assert boxes.shape == (2, cap, 4) and scores.shape == (2, cap) and labels.shape == (2, cap)
    assert boxes.dtype == np.float32 and labels.dtype == np.int64 and counts.dtype == np.int64
    for i, n in enumerate(counts):
        assert not boxes[i, n:].any() and not scores[i, n:].any() and not labels[i, n:].any()
        assert (labels[i, :n] >= 1).all() and (labels[i, :n] < cfg.MODEL.ATSS.NUM_CLASSES).all()
        assert (boxes[i, :n, 2] <= 159).all() and (boxes[i, :n, 0] >= 0).all()


def test_deformable_convolution_is_refused_by_name():
    from atss_core.config import cfg as default_cfg
    from tests.modeling.test_training import tiny_cfg

    cfg = tiny_cfg()
    cfg.merge_from_list(["MODEL.ATSS.USE_DCN_IN_TOWER", True])
    from atss_core.modeling.detector import build_detection_model

    model = build_detection_model(cfg).eval()
    with pytest.raises(ValueError, match="deformable convolution \\(rpn.head.cls_tower.*has no onnxruntime kernel"):
        export_onnx.ExportableATSS(model, cfg)
    assert default_cfg.MODEL.ATSS.USE_DCN_IN_TOWER is False


def test_onnx_demo_draws_the_eager_detections(exported, tmp_path):
    from onnx_predictor import ONNXDemo
    from predictor import ATSSDemo

    cfg, model, _, path = exported
    cfg = cfg.clone()
    cfg.merge_from_list(["INPUT.MIN_SIZE_TEST", 256, "INPUT.MAX_SIZE_TEST", 320, "TEST.OPTIMIZE_FOR_INFERENCE", False])
    torch.save({"model": model.state_dict()}, tmp_path / "w.pth")
    image = (np.random.RandomState(0).rand(240, 300, 3) * 255).astype(np.uint8)
    eager = ATSSDemo(cfg, weights=str(tmp_path / "w.pth"), confidence_threshold=0.0)
    onnx = ONNXDemo(cfg, path, confidence_threshold=0.0)
    ours, theirs = eager.compute_prediction(image), onnx.compute_prediction(image)
    fraction, eager_count, onnx_count = export_onnx.agreement(
        (ours.bbox.numpy(), ours.get_field("scores").numpy(), ours.get_field("labels").numpy()),
        (theirs.bbox.numpy(), theirs.get_field("scores").numpy(), theirs.get_field("labels").numpy()))
    assert eager_count > 20 and fraction >= 0.95 and abs(eager_count - onnx_count) <= 2
    annotated, _ = onnx.run_on_opencv_image(image)
    assert annotated.shape == image.shape


def test_the_command_line_exports_and_reports_the_agreement(tmp_path):
    from tests.tools.test_train_test_net import TINY_MODEL

    cfg, model = detector_with_spread_scores(seed=2)
    torch.save({"model": model.state_dict()}, tmp_path / "w.pth")
    (tmp_path / "tiny.yaml").write_text(TINY_MODEL)
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "export_onnx.py"), "--config-file", str(tmp_path / "tiny.yaml"),
         "--output", str(tmp_path / "out" / "m.onnx"), "--size", "256x320", "--check-sizes", "192x256",
         "MODEL.WEIGHT", str(tmp_path / "w.pth"), "MODEL.RESNETS.BACKBONE_OUT_CHANNELS", "32",
         "MODEL.ATSS.NUM_CONVS", "1"],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isfile(tmp_path / "out" / "m.onnx")
    lines = [line for line in result.stdout.splitlines() if "eager detections matched by onnxruntime" in line]
    assert len(lines) == 2 and all(float(line.split(": ")[1].split("%")[0]) >= 95 for line in lines), result.stdout
