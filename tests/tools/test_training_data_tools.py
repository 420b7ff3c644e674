"""tools/browse_dataset.py and tools/visualize_assignment.py write their pictures, and the
numbers visualize_assignment reports are the assigner's."""
import importlib.util
import json
import os
import re

import cv2
import pytest

from atss_core.config import load_config
from atss_core.data.build import build_dataset
from atss_core.data.transforms import build_transforms
from atss_core.engine.assignment_view import anchors_of
from atss_core.modeling.detector import build_detection_model
from atss_core.modeling.rpn.atss.assigners import assign
from atss_core.structures.boxlist_ops import cat_boxlist

from ..data.test_coco_dataset import write_coco

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RACCOON = os.path.join(REPO, "configs", "quickstart", "atss_R_18_raccoon.yaml")


def tool(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "tools", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_browse_dataset_draws_the_augmented_samples_with_their_ignore_regions(tmp_path, capsys):
    ann, root = write_coco(tmp_path)  # image 10: two objects and a crowd; 11: a degenerate box; 12: nothing
    name = "coco:{}:{}".format(root, ann)
    out = tmp_path / "browse"
    tool("browse_dataset").main([
        "--config-file", RACCOON, "--output", str(out), "--num", "5", "--seed", "1",
        "DATASETS.TRAIN", "('{}',)".format(name), "MODEL.ATSS.NUM_CLASSES", "3", "SOLVER.IMS_PER_BATCH", "2",
        "DATALOADER.NUM_WORKERS", "0", "DATALOADER.FILTER_EMPTY_ANNOTATIONS", "False",
        "MODEL.ATSS.IGNORE_CROWD", "True", "INPUT.PHOTOMETRIC_DISTORT_PROB", "1.0"])
    pictures = sorted(os.listdir(out))
    assert len(pictures) == 5 and all(p.endswith(".jpg") for p in pictures)
    assert all(cv2.imread(str(out / p)) is not None for p in pictures)
    printed = capsys.readouterr().out
    assert "wrote 5 training samples" in printed
    # the three images come with 2, 0 and 0 objects; the crowd of image 10 is an ignore region
    regions, empties = (int(v) for v in re.search(r"(\d+) ignore regions, (\d+) without", printed).groups())
    assert regions >= 1 and empties >= 1


def test_visualize_assignment_reports_the_assigners_candidates_and_positives(tmp_path, capsys):
    out = tmp_path / "assignment"
    tool("visualize_assignment").main(["--config-file", RACCOON, "--output", str(out), "--index", "19"])
    for name in ("assignment_ATSS.jpg", "assignment_compare.jpg", "assignment.md"):
        assert os.path.getsize(out / name) > 0
    report = json.loads((out / "assignment.json").read_text())

    # the same image, anchors and assignment computed here, without the tool's code path
    cfg = load_config(RACCOON, ["MODEL.DEVICE", "cpu"], freeze=True)
    dataset = build_dataset(list(cfg.DATASETS.TRAIN), build_transforms(cfg, is_train=False), is_train=False)[0]
    image, target, _ = dataset[19]
    anchors_per_level = anchors_of(build_detection_model(cfg), image, cfg.DATALOADER.SIZE_DIVISIBILITY)
    counts = [len(a) for a in anchors_per_level]
    anchors = cat_boxlist(anchors_per_level).bbox
    assert report["anchors_per_level"] == counts
    assert len(report["atss"]) == len(target) >= 2
    for positive_type in ("ATSS", "SSC", "IoU", "TOPK"):
        gt_index = assign(positive_type, anchors=anchors, gt_boxes=target.bbox, num_anchors_per_level=counts,
                          topk=cfg.MODEL.ATSS.TOPK, num_anchors_per_location=1, fg_iou_threshold=0.5,
                          bg_iou_threshold=0.4, gt_areas=target.area())
        assert report["positives"][positive_type] == int((gt_index >= 0).sum())
        if positive_type == "ATSS":
            for row in report["atss"]:
                assert row["positives"] == int((gt_index == row["gt"]).sum())
                assert row["candidates_per_level"] == [min(cfg.MODEL.ATSS.TOPK, c) for c in counts]
                assert row["threshold"] == pytest.approx(row["iou_mean"] + row["iou_std"], rel=1e-5)
                assert row["positives"] <= row["selected"]
    assert "| gt |" in capsys.readouterr().out


def test_visualize_assignment_names_a_bad_index(tmp_path):
    with pytest.raises(IndexError, match="outside dataset raccoon_train"):
        tool("visualize_assignment").main(["--config-file", RACCOON, "--output", str(tmp_path), "--index", "999"])


def test_visualize_assignment_shows_the_anchors_a_crowd_ignores(tmp_path):
    ann, root = write_coco(tmp_path)  # image 10: two objects and a crowd over the whole picture
    out = tmp_path / "assignment"
    args = ["--config-file", RACCOON, "--output", str(out), "DATASETS.TRAIN", "('coco:{}:{}',)".format(root, ann),
            "MODEL.ATSS.NUM_CLASSES", "3", "INPUT.MIN_SIZE_TEST", "120", "INPUT.MAX_SIZE_TEST", "200"]
    tool("visualize_assignment").main(args + ["MODEL.ATSS.IGNORE_CROWD", "True"])
    with_crowd = json.loads((out / "assignment.json").read_text())
    tool("visualize_assignment").main(args)
    without = json.loads((out / "assignment.json").read_text())
    assert with_crowd["ignored"]["ATSS"] > 0 and without["ignored"]["ATSS"] == 0
    assert with_crowd["positives"] == without["positives"]  # real objects' positives come first


def test_tiling_check_counts_the_objects_of_every_copy_and_draws_them(tmp_path):
    """tools/tiling_check.py on a random quickstart model: the large image holds copies x copies
    scenes' objects, each run is counted against them, and the picture is written."""
    import torch

    tiling_check = tool("tiling_check")
    config = os.path.join(REPO, "configs", "quickstart", "atss_R_18_synthetic.yaml")
    torch.manual_seed(0)
    weights = tmp_path / "random.pth"
    torch.save({"model": build_detection_model(load_config(config, ["MODEL.DEVICE", "cpu"])).state_dict()}, weights)
    summary = tiling_check.main(["--config-file", config, "--weights", str(weights), "--data", str(tmp_path / "data"),
                                 "--output", str(tmp_path / "out"), "--copies", "2", "--tile-size", "512",
                                 "--test-size", "256", "400", "--score", "0.0"])
    runs = summary["runs"]
    assert runs["scene"]["objects"] > 50 and runs["large"]["objects"] == 4 * runs["scene"]["objects"]
    assert runs["large_tiled"]["objects"] == runs["large"]["objects"]
    assert all(0 <= run["found"] <= run["objects"] for run in runs.values())
    assert summary["large_size"] == [2 * s for s in summary["scene_size"]]
    picture = cv2.imread(str(tmp_path / "out" / "tiling.jpg"))
    assert picture is not None and picture.shape[1] > summary["scene_size"][1]
