"""atss_core/export (tools/export_onnx.py): the exported graph, run by onnxruntime at sizes other than the one
it was traced at, agrees with the eager model; DCN configs are refused by name; the ONNX
demo predictor gives the eager predictor's detections."""
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from tests.conftest import ROOT
from tests.utils.test_checkpoint import tiny_model

from atss_core.export import onnx as export_onnx

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
    from atss_core.engine.predictor import ATSSDemo
    from atss_core.export.predictor import ONNXDemo

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
    names = ["__background__", "green", "red"]
    torch.save({"model": model.state_dict(), "class_names": names}, tmp_path / "w.pth")
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
    # the checkpoint's class names travel in the model's metadata to the ONNX demo
    import onnxruntime

    from atss_core.export.onnx import read_class_names
    from atss_core.export.predictor import ONNXDemo

    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "m.onnx"), providers=["CPUExecutionProvider"])
    assert read_class_names(session) == names
    cfg.merge_from_list(["MODEL.RESNETS.BACKBONE_OUT_CHANNELS", 32, "MODEL.ATSS.NUM_CONVS", 1])
    assert ONNXDemo(cfg, str(tmp_path / "out" / "m.onnx")).class_names == names


def _rows(boxes, scores, labels):
    """Detections as [n, 6] float64 rows (label, score, box) in a canonical order."""
    rows = torch.cat([labels[:, None].double(), scores[:, None].double(), boxes.double()], dim=1).numpy()
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize("pre_nms_top_n", [1000, 40])
def test_the_graph_scores_decodes_and_clips_each_level_as_the_eager_model(pre_nms_top_n):
    """The graph's per-level detections (traced at one size, run at others) are, bit for bit,
    the eager post-processor's: same anchors, candidates, cls x centerness, boxes, clipping."""
    from atss_core.structures.image_list import ImageList

    cfg, model = tiny_model()
    model.eval()
    model.rpn.box_selector_test.pre_nms_top_n = pre_nms_top_n
    exportable = export_onnx.ExportableATSS(model, cfg).eval()
    post, generator = model.rpn.box_selector_test, model.rpn.anchor_generator
    cells = list(generator.cell_anchors)
    A, C = generator.num_anchors_per_location()[0], cfg.MODEL.ATSS.NUM_CLASSES - 1

    class Level(torch.nn.Module):
        def __init__(self, level):
            super().__init__()
            self.level = level

        def forward(self, images, cls, reg, ctr):
            return exportable.level_detections(cls, reg, ctr, exportable.strides[self.level],
                                               exportable.cell_anchors[self.level], images.shape[3], images.shape[2])

    def head_outputs(height, width, seed):
        g = torch.Generator().manual_seed(seed)
        shapes = [((height + s - 1) // s, (width + s - 1) // s) for s in generator.strides]
        cls = [torch.randn(2, A * C, h, w, generator=g) * 1.5 - 3.0 for h, w in shapes]
        reg = [torch.randn(2, A * 4, h, w, generator=g) for h, w in shapes]
        ctr = [torch.randn(2, A, h, w, generator=g) for h, w in shapes]
        ctr[0][0, :, 0] = -200.0  # sigmoid 0: cls x centerness underflows, the candidates stay
        return cls, reg, ctr

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes
        sample = head_outputs(64, 96, seed=0)
        traced = [torch.jit.trace(Level(level), (torch.zeros(2, 3, 64, 96), sample[0][level], sample[1][level],
                                                 sample[2][level])) for level in range(len(generator.strides))]
        for height, width in [(64, 96), (128, 160), (200, 136)]:
            cls, reg, ctr = head_outputs(height, width, seed=height)
            images = ImageList(torch.zeros(2, 3, height, width), [(height, width)] * 2)
            anchors = generator(images, [torch.zeros(1, 1, c.shape[2], c.shape[3]) for c in cls])
            zero_scores = detections = 0
            for level, per_image_anchors in enumerate(zip(*anchors)):
                eager = post.forward_for_single_feature_map(cls[level], reg[level], ctr[level], per_image_anchors)
                for graph in (exportable.level_detections(cls[level], reg[level], ctr[level], generator.strides[level],
                                                          cells[level], width, height),
                              traced[level](images.tensors, cls[level], reg[level], ctr[level])):
                    for image, ours in enumerate(eager):
                        boxes, scores, labels = (t[image] for t in graph)
                        valid = scores >= 0
                        assert torch.equal(scores[~valid], torch.full_like(scores[~valid], -1.0))
                        expected = _rows(ours.bbox, ours.get_field("scores"), ours.get_field("labels"))
                        assert len(expected) <= pre_nms_top_n
                        detections += len(expected)
                        np.testing.assert_array_equal(_rows(boxes[valid], scores[valid], labels[valid]), expected)
                        zero_scores += int((ours.get_field("scores") == 0).sum())
            assert detections > 100 and (zero_scores > 0 or pre_nms_top_n < 1000)


def test_zero_score_detections_survive_the_graph_nms_and_cap(tmp_path):
    """A candidate whose cls x centerness underflows to 0 is a detection eagerly; the graph's
    NMS and cap keep it too, and drop only the padding."""
    from atss_core.modeling.rpn.atss.inference import SENTINEL

    class Tail(torch.nn.Module):
        def forward(self, boxes, scores, labels):
            kept = export_onnx.multi_label_nms_padded(boxes, scores, labels, 2, 0.6, 8)
            return export_onnx.keep_top_padded(boxes, kept, labels, 4)

    boxes = torch.tensor([[[0.0, 0, 9, 9], [20, 20, 29, 29], [0, 0, 9, 9], [40, 40, 49, 49], [0, 0, 9, 8]]])
    scores = torch.tensor([[0.0, 0.5, 0.25, SENTINEL, 0.3]])
    labels = torch.tensor([[1, 2, 2, 1, 1]])
    path = str(tmp_path / "tail.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Tail(), (boxes, scores, labels), path, input_names=["boxes", "scores", "labels"],
                          dynamic_axes={name: {1: "k"} for name in ("boxes", "scores", "labels")},
                          opset_version=export_onnx.OPSET, dynamo=False)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    # the 0-score box of class 1 is suppressed by the 0.3 one (IoU 0.9); on its own it stays
    for inputs, expected_scores, expected_labels in [
            ((boxes, scores, labels), [0.5, 0.3, 0.25], [2, 1, 2]),
            ((boxes[:, :4], scores[:, :4], labels[:, :4]), [0.5, 0.25, 0.0], [2, 2, 1])]:
        for out_boxes, out_scores, out_labels, count in (
                [torch.as_tensor(t) for t in session.run(None, {"boxes": inputs[0].numpy(), "scores": inputs[1].numpy(),
                                                                  "labels": inputs[2].numpy()})],
                Tail()(*inputs)):
            assert count.tolist() == [3]
            assert out_scores[0, :3].tolist() == pytest.approx(expected_scores)
            assert out_labels[0].tolist() == expected_labels + [0]
            assert not out_boxes[0, 3:].any() and not out_scores[0, 3:].any()


@pytest.mark.parametrize("legacy_plus_one, postprocess", [(False, "official"), (True, "mmdet")])
def test_the_graphs_nms_follows_the_eager_post_processor_in_a_mixed_config(legacy_plus_one, postprocess):
    """A config that mixes conventions: the graph's NMS (run eagerly, the same IoU as the ONNX
    operator) keeps the eager model's detections: +1 IoU with the official post-processing,
    plain IoU with mmdetection's, whatever MODEL.LEGACY_PLUS_ONE says about the boxes."""
    from atss_core.modeling.detector import build_detection_model
    from tests.modeling.test_training import tiny_cfg

    cfg = tiny_cfg()
    cfg.merge_from_list(["MODEL.ATSS.NUM_CLASSES", 3, "MODEL.LEGACY_PLUS_ONE", legacy_plus_one,
                         "MODEL.ATSS.POSTPROCESS", postprocess, "TEST.DETECTIONS_PER_IMG", 1000])
    torch.manual_seed(0)
    model = build_detection_model(cfg).eval()
    _, spread = detector_with_spread_scores()
    model.rpn.head.load_state_dict(spread.rpn.head.state_dict())
    images = torch.randn(2, 3, 128, 160, generator=torch.Generator().manual_seed(3)) * 40
    with torch.no_grad():
        graph = export_onnx.ExportableATSS(model, cfg)(images)
    for i, (boxes, scores, labels) in enumerate(export_onnx.eager_detections(model, images)):
        count = int(graph[3][i])
        assert count == len(scores) > 50
        order, graph_order = np.lexsort((scores, labels)), np.lexsort((graph[1][i, :count].numpy(),
                                                                       graph[2][i, :count].numpy()))
        assert (labels[order] == graph[2][i, :count].numpy()[graph_order]).all()
        np.testing.assert_allclose(scores[order], graph[1][i, :count].numpy()[graph_order], atol=1e-6)


@pytest.mark.parametrize("postprocess", ["official", "mmdet"])
def test_the_graph_runs_class_agnostic_nms_as_the_eager_model(tmp_path, postprocess):
    """MODEL.ATSS.NMS_CLASS_AGNOSTIC in the exported graph: onnxruntime keeps the eager model's
    detections, fewer than the class-wise NMS keeps, and none of them overlap across classes."""
    from atss_core.structures.boxlist_ops import box_iou_legacy

    cfg, model = detector_with_spread_scores()
    post = model.rpn.box_selector_test
    post.fpn_post_nms_top_n = 5 * post.pre_nms_top_n  # no cap: the NMS alone decides the count
    if postprocess == "mmdet":
        from atss_core.modeling.rpn.atss.inference import MMDetPostProcessor

        post.__class__ = MMDetPostProcessor
    images = torch.randn(1, 3, 256, 320, generator=torch.Generator().manual_seed(5)) * 40
    class_wise_count = len(export_onnx.eager_detections(model, images)[0][1])
    post.nms_class_agnostic = True
    path = str(tmp_path / "agnostic.onnx")
    export_onnx.export(model, cfg, path, 256, 320)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    eager = export_onnx.eager_detections(model, images)[0]
    fraction, eager_count, onnx_count = export_onnx.agreement(eager, export_onnx.onnx_detections(session, images)[0])
    assert fraction >= 0.95 and abs(eager_count - onnx_count) <= 2, (fraction, eager_count, onnx_count)
    assert 5 < eager_count < class_wise_count
    boxes = torch.as_tensor(eager[0])
    ious = box_iou_legacy(boxes, boxes, 1 if postprocess == "official" else 0)
    ious.fill_diagonal_(0)
    assert ious.max() <= post.nms_thresh + 1e-6


def _sorted_detections(boxes, scores, labels):
    order = np.lexsort((labels, -scores))
    return boxes[order], scores[order], labels[order]


@pytest.mark.parametrize("postprocess, agnostic", [("official", False), ("mmdet", False), ("official", True)])
def test_the_no_nms_graph_and_its_numpy_post_processing_give_the_full_graphs_detections(tmp_path, postprocess,
                                                                                       agnostic):
    """--no-nms: export/raw.py's postprocess() of the raw graph's outputs equals the full graph's
    detections (count, labels, scores, boxes), batch of 2, at two sizes."""
    from atss_core.export import raw
    from atss_core.modeling.rpn.atss.inference import MMDetPostProcessor

    cfg, model = detector_with_spread_scores()
    post = model.rpn.box_selector_test
    if postprocess == "mmdet":
        post.__class__ = MMDetPostProcessor
    post.nms_class_agnostic = agnostic
    full_path, raw_path = str(tmp_path / "full.onnx"), str(tmp_path / "raw.onnx")
    export_onnx.export(model, cfg, full_path, 256, 320)
    raw.export_raw(model, cfg, raw_path, 256, 320)
    full = onnxruntime.InferenceSession(full_path, providers=["CPUExecutionProvider"])
    no_nms = onnxruntime.InferenceSession(raw_path, providers=["CPUExecutionProvider"])
    assert [o.name for o in no_nms.get_outputs()][:3] == ["cls_p3", "centerness_p3", "boxes_p3"]
    assert raw.read_settings(no_nms)["mmdet"] == (postprocess == "mmdet")
    for height, width in ((256, 320), (192, 288)):
        images = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(width)) * 40
        for ours, theirs in zip(raw.raw_onnx_detections(no_nms, images), export_onnx.onnx_detections(full, images)):
            assert len(theirs[1]) > 20 and len(ours[1]) == len(theirs[1])
            ours, theirs = _sorted_detections(*ours), _sorted_detections(*theirs)
            np.testing.assert_array_equal(ours[2], theirs[2])
            np.testing.assert_allclose(ours[1], theirs[1], atol=1e-6)
            np.testing.assert_allclose(ours[0], theirs[0], atol=1e-3)


def test_the_static_graph_runs_its_shape_and_refuses_another_by_name(tmp_path, exported):
    cfg, model, dynamic, _ = exported
    path = str(tmp_path / "static.onnx")
    export_onnx.export(model, cfg, path, 128, 160, static=True)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [1, 3, 128, 160]
    images = torch.randn(1, 3, 128, 160, generator=torch.Generator().manual_seed(0)) * 40
    fixed, free = export_onnx.onnx_detections(session, images)[0], export_onnx.onnx_detections(dynamic, images)[0]
    assert export_onnx.agreement(free, fixed)[0] == 1.0 and len(fixed[1]) > 20
    for shape in ((1, 3, 160, 128), (2, 3, 128, 160)):
        with pytest.raises(ValueError, match="fixed input of shape 1x3x128x160 .exported with --static.; got "
                                             + "x".join(str(d) for d in shape)):
            export_onnx.onnx_detections(session, torch.zeros(shape))


def test_the_command_line_exports_a_static_fp16_graph_without_nms(tmp_path):
    cfg, model = detector_with_spread_scores()
    weights = tmp_path / "tiny.pth"
    torch.save({"model": model.state_dict()}, weights)
    config = tmp_path / "tiny.yaml"
    config.write_text(cfg.dump())
    output = tmp_path / "raw_static.onnx"
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "export_onnx.py"), "--config-file",
                             str(config), "--output", str(output), "--static", "128x160", "--no-nms", "--fp16",
                             "MODEL.WEIGHT", str(weights)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "no NMS, fixed input 1x3x128x160, float16" in result.stdout and "post-processing nodes kept" in result.stdout
    assert sorted(os.listdir(tmp_path)) == ["raw_static.onnx", "tiny.pth", "tiny.yaml"]  # no temporary file left
    matched = re.search(r"128x160: ([\d.]+)% of the (\d+) eager detections matched", result.stdout)
    assert matched and float(matched.group(1)) >= 95 and int(matched.group(2)) > 20, result.stdout


def test_the_onnx_demo_runs_a_static_graph_without_nms(tmp_path):
    """ONNXDemo on a --static --no-nms file: a smaller resized image is padded into the fixed
    input (zeros, as the model's own padding) and gives the eager model's detections on that
    padded input; a larger one is refused by name."""
    from atss_core.export import raw
    from atss_core.export.predictor import ONNXDemo
    from atss_core.structures import to_image_list

    cfg, model = detector_with_spread_scores()
    cfg.merge_from_list(["INPUT.MIN_SIZE_TEST", 96, "INPUT.MAX_SIZE_TEST", 160])
    path = str(tmp_path / "raw_static.onnx")
    raw.export_raw(model, cfg, path, 128, 160, static=True)
    image = (np.random.RandomState(4).rand(60, 100, 3) * 255).astype(np.uint8)
    demo = ONNXDemo(cfg, path, confidence_threshold=0.0)
    tensor, _ = demo.transforms(image, None)
    images = to_image_list([tensor], cfg.DATALOADER.SIZE_DIVISIBILITY)
    assert tuple(images.tensors.shape[2:]) == (96, 160)  # smaller than the graph's 128 x 160
    ours = demo.detect(images)
    padded = torch.nn.functional.pad(images.tensors, (0, 0, 0, 32))
    boxes, scores, labels = export_onnx.eager_detections(model, padded)[0]
    eager = (np.minimum(boxes, [159, 95, 159, 95]), scores, labels)  # clipped to the image, as the demo does
    fraction, eager_count, _ = export_onnx.agreement(
        eager, (ours.bbox.numpy(), ours.get_field("scores").numpy(), ours.get_field("labels").numpy()))
    assert eager_count > 20 and fraction >= 0.95, (fraction, eager_count, len(ours))
    demo.cfg.merge_from_list(["INPUT.MIN_SIZE_TEST", 200, "INPUT.MAX_SIZE_TEST", 300])
    demo._set_up_labels(0.0, None, 0.0)
    with pytest.raises(ValueError, match="takes a fixed 128x160 input .--static. but the resized image is"):
        demo.compute_prediction(image)


def test_the_fp16_graph_computes_the_network_in_float16_and_keeps_the_eager_detections(tmp_path, exported):
    """--fp16: the backbone, FPN and head weights are float16, inputs, outputs and the NMS stay
    float32, and onnxruntime's detections match the float32 model's within the stated tolerance."""
    import onnx

    from atss_core.export.precision import FP16_IOU_MIN, FP16_SCORE_TOLERANCE, convert_to_fp16

    cfg, model, _, path = exported
    half = str(tmp_path / "half.onnx")
    converted, kept = convert_to_fp16(path, half)
    graph = onnx.load(half)
    conv_weights = {n.input[1] for n in graph.graph.node if n.op_type == "Conv"}
    types = {i.name: i.data_type for i in graph.graph.initializer}
    assert conv_weights and all(types.get(w) == onnx.TensorProto.FLOAT16 for w in conv_weights if w in types)
    assert converted > 100 and kept > 100
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in graph.graph.input)
    assert [v.type.tensor_type.elem_type for v in graph.graph.output][:2] == [onnx.TensorProto.FLOAT] * 2
    session = onnxruntime.InferenceSession(half, providers=["CPUExecutionProvider"])
    for seed in (0, 1):
        images = torch.randn(1, 3, 256, 320, generator=torch.Generator().manual_seed(seed)) * 40
        fraction, eager_count, _ = export_onnx.agreement(export_onnx.eager_detections(model, images)[0],
                                                         export_onnx.onnx_detections(session, images)[0],
                                                         FP16_SCORE_TOLERANCE, FP16_IOU_MIN)
        assert eager_count > 20 and fraction >= 0.95
    with pytest.raises(ValueError, match="no /backbone/ or /head/ nodes"):
        tail = str(tmp_path / "tail_only.onnx")
        onnx.save(onnx.helper.make_model(onnx.helper.make_graph([], "empty", [], [])), tail)
        convert_to_fp16(tail, str(tmp_path / "x.onnx"))
