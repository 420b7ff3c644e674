"""Dense scenes end to end: train_net.py trains on synthetic images of hundreds of small objects
(tools/make_synthetic_dataset.py --dense) and evaluates them past COCO's 100 detections
(TEST.COCO_MAX_DETS), with tiled inference in test_net.py."""
import glob
import json
import os

from atss_core.data.synthetic import write_split

from .test_train_test_net import TINY_MODEL, run


def test_dense_synthetic_data_trains_and_evaluates_past_a_hundred_detections(tmp_path):
    data = tmp_path / "dense"
    write_split(str(data), "train", 2, seed=1, size=256, dense_objects=(300, 400))
    write_split(str(data), "val", 1, seed=2, size=256, dense_objects=(300, 400))
    with open(data / "annotations" / "instances_val.json") as f:
        assert len(json.load(f)["annotations"]) >= 300
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_MODEL)
    train = "coco:{}:{}".format(data / "train", data / "annotations" / "instances_train.json")
    val = "coco:{}:{}".format(data / "val", data / "annotations" / "instances_val.json")
    out = tmp_path / "out"
    overrides = ["DATASETS.TEST", "('{}',)".format(val),
              "MODEL.ATSS.NUM_CLASSES", 5, "INPUT.MIN_SIZE_TRAIN", "(256,)", "INPUT.MAX_SIZE_TRAIN", 256,
              "INPUT.MIN_SIZE_TEST", 256, "INPUT.MAX_SIZE_TEST", 256, "SOLVER.MAX_ITER", 2,
              "MODEL.ATSS.INFERENCE_TH", 0.0, "MODEL.ATSS.PRE_NMS_TOP_N", 1000, "TEST.DETECTIONS_PER_IMG", 1000,
              "TEST.COCO_MAX_DETS", "(1, 100, 1000)", "TEST.TILE.ENABLED", True, "TEST.TILE.SIZE", 128]
    log = run("train_net.py", str(config), out, train, *[str(v) for v in overrides])
    assert os.path.isfile(os.path.join(str(out), "model_final.pth"))
    assert "maxDets=1000" in log
    metrics_files = glob.glob(os.path.join(str(out), "inference", "*", "coco_metrics.json"))
    assert len(metrics_files) == 1
    with open(metrics_files[0]) as f:
        report = json.load(f)
    assert set(report["bbox_recall"]) == {"AR@1", "AR@100", "AR@1000", "ARs@1000", "ARm@1000", "ARl@1000"}
    # an untrained model on 300+ objects: what counts is that 1000 detections were scored
    assert report["bbox_recall"]["AR@1000"] >= report["bbox_recall"]["AR@100"] >= 0
