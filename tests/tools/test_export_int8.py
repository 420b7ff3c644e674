"""tools/export_onnx.py --int8: onnxruntime's static QDQ quantization of the backbone, FPN and
head, calibrated on a dataset, keeps the AP of a trained quickstart model within a point."""
import json
import os
import subprocess
import sys

import onnx
import pytest

from atss_core.config import load_config
from atss_core.data.synthetic import make_synthetic_dataset
from atss_core.export.onnx import build_model, export
from atss_core.export.quantize import DatasetCalibrationReader, coco_evaluation_of, describe_quantized, quantize_int8

pytest.importorskip("onnxruntime")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "quickstart", "atss_R_18_synthetic.yaml")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The quickstart model after 300 iterations on 96 synthetic images (about 40 s)."""
    base = tmp_path_factory.mktemp("int8")
    data = str(base / "synthetic")
    make_synthetic_dataset(data, num_train=96, num_val=24)
    train = "coco:{0}/train:{0}/annotations/instances_train.json".format(data)
    val = "coco:{0}/val:{0}/annotations/instances_val.json".format(data)
    out = str(base / "out")
    command = [sys.executable, os.path.join(ROOT, "tools", "train_net.py"), "--config-file", CONFIG, "--skip-test",
               "OUTPUT_DIR", out, "DATASETS.TRAIN", "('{}',)".format(train), "DATASETS.TEST", "('{}',)".format(val),
               "SOLVER.MAX_ITER", "300", "SOLVER.STEPS", "(250,)", "SOLVER.WARMUP_ITERS", "50",
               "SOLVER.CHECKPOINT_PERIOD", "0", "DATALOADER.NUM_WORKERS", "0", "TENSORBOARD.ENABLED", "False"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert result.returncode == 0, result.stderr[-3000:]
    cfg = load_config(CONFIG, ["MODEL.DEVICE", "cpu", "MODEL.WEIGHT", os.path.join(out, "model_final.pth"),
                               "DATASETS.TEST", (val,)], freeze=True)
    fp32 = str(base / "fp32.onnx")
    export(build_model(cfg), cfg, fp32, 128, 128)
    return cfg, train, val, fp32, base


def test_the_int8_graph_is_quantized_and_keeps_the_ap(trained):
    cfg, train, val, fp32, base = trained
    int8 = str(base / "int8.onnx")
    summary = quantize_int8(fp32, int8, DatasetCalibrationReader(cfg, train, 32))
    graph = onnx.load(int8).graph
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert summary["quantized_convs"] == len(convs) > 40 and summary["float_convs"] == 0
    assert summary["qdq_nodes"] > 2 * len(convs)
    # the post-processing stays float: nothing quantized feeds the NMS
    produced_by = {out: node for node in graph.node for out in node.output}
    nms = [n for n in graph.node if n.op_type == "NonMaxSuppression"]
    assert nms and all(produced_by[i].op_type != "DequantizeLinear" for n in nms for i in n.input if i in produced_by)
    fp32_ap = coco_evaluation_of(fp32, cfg, val)["bbox"]["AP"]
    int8_ap = coco_evaluation_of(int8, cfg, val)["bbox"]["AP"]
    assert fp32_ap > 0.1, fp32_ap  # a trained model, not noise
    assert abs(int8_ap - fp32_ap) <= 0.01, (fp32_ap, int8_ap)


def test_calibration_needs_a_usable_dataset_and_a_real_export(trained, tmp_path):
    cfg, _, _, _, _ = trained
    with pytest.raises(KeyError):
        DatasetCalibrationReader(cfg, "no_such_dataset", 4)
    empty = str(tmp_path / "empty.onnx")
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([], "empty", [], [])), empty)
    with pytest.raises(ValueError, match="no /backbone/ or /head/ nodes to quantize"):
        quantize_int8(empty, str(tmp_path / "x.onnx"), None)
    assert json.dumps(describe_quantized(empty)) == json.dumps({"quantized_convs": 0, "float_convs": 0,
                                                                "qdq_nodes": 0})
