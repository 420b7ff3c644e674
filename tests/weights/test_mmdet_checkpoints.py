"""mmdetection ATSS checkpoints: recognised by their keys, converted to our names, refused
with a config of the other convention (silently shifted boxes are the failure to prevent),
and run through test_net and the demo with mmdetection's detections (tests/data/mmdet)."""
import json
import os
import subprocess
import sys

import pytest
import torch

from atss_core.modeling.detector import build_detection_model
from atss_core.utils.checkpoint import DetectronCheckpointer
from atss_core.weights.mmdet import MMDET_BN_EPS, convention_settings, convert_mmdet_atss, mmdet_state_dict
from tests.golden.test_mmdet_outputs import (CHECKPOINT, IMAGES, NARROW, ROOT, assert_same_detections, narrow_cfg)

OFFICIAL_CONFIG = os.path.join(ROOT, "configs", "atss", "torchvision", "atss_R_50_FPN_1x.yaml")
ENV = dict(os.environ, OMP_NUM_THREADS="2")
needs_photos = pytest.mark.skipif(not os.path.isdir(IMAGES), reason="the shipped photographs (data/raccoon) are missing")


@pytest.fixture(scope="module")
def mmdet_checkpoint():
    return torch.load(CHECKPOINT, weights_only=True)


@pytest.fixture(scope="module")
def recorded():
    return torch.load(os.path.join(ROOT, "tests", "data", "mmdet", "outputs.pth"), weights_only=True)


def official_cfg(*opts):
    from atss_core.config import cfg as default_cfg

    cfg = default_cfg.clone()
    cfg.merge_from_file(OFFICIAL_CONFIG)
    cfg.merge_from_list(NARROW + list(opts))
    return cfg


def test_the_conversion_gives_every_tensor_of_our_model_in_its_shape(mmdet_checkpoint):
    state_dict = mmdet_state_dict(mmdet_checkpoint)
    assert state_dict is not None and mmdet_state_dict({"model": {"backbone.body.stem.conv1.weight": 0}}) is None
    converted = convert_mmdet_atss(state_dict)
    ours = build_detection_model(narrow_cfg()).state_dict()
    expected = {k: tuple(v.shape) for k, v in ours.items() if not k.startswith("rpn.anchor_generator.")}
    assert {k: tuple(v.shape) for k, v in converted.items()} == expected
    assert torch.equal(converted["backbone.fpn.fpn_inner2.weight"], state_dict["neck.lateral_convs.0.conv.weight"])
    assert torch.equal(converted["backbone.fpn.top_blocks.p7.bias"], state_dict["neck.fpn_convs.4.conv.bias"])
    assert torch.equal(converted["rpn.head.bbox_tower.10.weight"], state_dict["bbox_head.reg_convs.3.gn.weight"])
    assert torch.equal(converted["rpn.head.cls_tower.9.bias"], torch.zeros(32))  # no bias in mmdetection
    assert torch.equal(converted["rpn.head.centerness.weight"], state_dict["bbox_head.atss_centerness.weight"])
    assert converted["rpn.head.scales.2.scale"].shape == (1,)
    assert float(converted["rpn.head.scales.2.scale"]) == float(state_dict["bbox_head.scales.2.scale"])
    assert torch.equal(converted["backbone.body.layer3.1.bn2.running_var"],
                       state_dict["backbone.layer3.1.bn2.running_var"] + MMDET_BN_EPS)
    with pytest.raises(ValueError, match="unexpected entry bbox_head.extra.weight"):
        convert_mmdet_atss(dict(state_dict, **{"bbox_head.extra.weight": torch.zeros(1)}))


def test_an_mmdetection_checkpoint_with_an_official_config_is_refused_naming_the_config():
    cfg = official_cfg()
    with pytest.raises(ValueError) as error:
        DetectronCheckpointer(cfg, build_detection_model(cfg)).load(CHECKPOINT, use_latest=False)
    message = str(error.value)
    assert "holds mmdetection weights" in message and "configs/mmdet/atss_r50_fpn_1x_coco.yaml" in message
    for key in ("MODEL.LEGACY_PLUS_ONE False", "MODEL.FPN.RELU_BEFORE_P7 False", "MODEL.ATSS.POSTPROCESS mmdet",
                "INPUT.TO_RGB255 True", "INPUT.RESIZE_STYLE mmdet", "INPUT.PIXEL_MEAN"):
        assert key in message, key
    # one convention key missing is enough to refuse
    cfg = narrow_cfg("MODEL.FPN.RELU_BEFORE_P7", "True")
    with pytest.raises(ValueError, match="set MODEL.FPN.RELU_BEFORE_P7 False;"):
        DetectronCheckpointer(cfg, build_detection_model(cfg)).load(CHECKPOINT, use_latest=False)


def test_an_official_checkpoint_with_an_mmdetection_config_is_refused_and_ours_round_trip(tmp_path):
    official = build_detection_model(official_cfg())
    torch.save({"model": official.state_dict()}, tmp_path / "official.pth")
    cfg = narrow_cfg()
    with pytest.raises(ValueError, match="holds official-convention ATSS weights.*configs/atss/"):
        DetectronCheckpointer(cfg, build_detection_model(cfg)).load(str(tmp_path / "official.pth"), use_latest=False)
    # a checkpoint we save with mmdetection's conventions says so, and loads back with them only
    model = build_detection_model(cfg)
    DetectronCheckpointer(cfg, model).load(CHECKPOINT, use_latest=False, strict=True)
    saved = DetectronCheckpointer(cfg, model, save_dir=str(tmp_path), save_to_disk=True).save("finetuned")
    conventions = torch.load(saved, weights_only=True)["conventions"]
    assert conventions == convention_settings(cfg) and conventions["MODEL.ATSS.POSTPROCESS"] == "mmdet"
    DetectronCheckpointer(cfg, build_detection_model(cfg)).load(saved, use_latest=False, strict=True)
    with pytest.raises(ValueError, match="was trained with MODEL.LEGACY_PLUS_ONE False, .*but the config sets "
                                         "MODEL.LEGACY_PLUS_ONE True"):
        DetectronCheckpointer(official_cfg(), build_detection_model(official_cfg())).load(saved, use_latest=False)
    # the first version's tag, "mmdet", still means the whole configs/mmdet/ set
    torch.save({"model": model.state_dict(), "conventions": "mmdet"}, tmp_path / "tagged.pth")
    DetectronCheckpointer(cfg, build_detection_model(cfg)).load(str(tmp_path / "tagged.pth"), use_latest=False, strict=True)
    with pytest.raises(ValueError, match="holds mmdetection weights"):
        DetectronCheckpointer(official_cfg(), build_detection_model(official_cfg())).load(str(tmp_path / "tagged.pth"),
                                                                                 use_latest=False)
    # backbone-only weights (ImageNet) are not detectors: any convention may start from them
    backbone = {k: v for k, v in official.state_dict().items() if k.startswith("backbone.body.")}
    torch.save({"model": backbone}, tmp_path / "backbone.pth")
    DetectronCheckpointer(cfg, build_detection_model(cfg)).load(str(tmp_path / "backbone.pth"), use_latest=False)


def test_a_config_that_mixes_conventions_resumes_from_its_own_checkpoints(tmp_path):
    """An official config with only MODEL.LEGACY_PLUS_ONE False (a researcher's mix): the
    checkpoints it writes load back into it (a resumed run), and into nothing that differs."""
    cfg = official_cfg("MODEL.LEGACY_PLUS_ONE", "False")
    model = build_detection_model(cfg)
    saved = DetectronCheckpointer(cfg, model, save_dir=str(tmp_path), save_to_disk=True).save("model_0000002", iteration=2)
    resumed = DetectronCheckpointer(cfg, build_detection_model(cfg), save_dir=str(tmp_path), save_to_disk=True)
    assert resumed.load(strict=True)["iteration"] == 2
    for key, value in (("MODEL.LEGACY_PLUS_ONE", "True"), ("MODEL.ATSS.POSTPROCESS", "mmdet")):
        other = official_cfg("MODEL.LEGACY_PLUS_ONE", "False", key, value)
        with pytest.raises(ValueError, match="was trained with {} ".format(key)):
            DetectronCheckpointer(other, build_detection_model(other)).load(saved, use_latest=False)


@pytest.mark.parametrize("key, value", [("MODEL.ATSS.POSTPROCESS", "mmdet"), ("MODEL.LEGACY_PLUS_ONE", "False")])
def test_the_multi_scale_test_is_refused_with_mmdetections_conventions(key, value):
    cfg = official_cfg("TEST.BBOX_AUG.ENABLED", "True", key, value)
    with pytest.raises(ValueError, match=r"TEST.BBOX_AUG \(the official multi-scale test\) needs the official "
                                         "conventions"):
        build_detection_model(cfg)
    build_detection_model(official_cfg("TEST.BBOX_AUG.ENABLED", "True"))


@needs_photos
def test_test_net_and_the_demo_write_mmdetections_detections(tmp_path, recorded):
    """test_net's bbox.json ([x, y, x2 - x1, y2 - y1]: mmdetection's widths) and the demo's
    detections.json hold mmdetection's detections of the three photographs."""
    from atss_core.engine.predictor import COCO_CLASSES

    records = recorded["images"]
    images = [{"id": i + 1, "file_name": r["file_name"], "height": r["ori_shape"][0], "width": r["ori_shape"][1]}
              for i, r in enumerate(records)]
    annotations = [{"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [10, 10, 50, 40], "area": 2000,
                    "iscrowd": 0} for i in range(len(records))]
    categories = [{"id": k, "name": name} for k, name in enumerate(COCO_CLASSES[1:], start=1)]
    (tmp_path / "ann.json").write_text(json.dumps({"images": images, "annotations": annotations,
                                                   "categories": categories}))
    dataset = "coco:{}:{}".format(IMAGES, tmp_path / "ann.json")
    config = os.path.join(ROOT, "configs", "mmdet", "atss_r50_fpn_1x_coco.yaml")
    common = NARROW + ["MODEL.WEIGHT", CHECKPOINT, "TENSORBOARD.ENABLED", "False"]
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "test_net.py"), "--config-file", config,
                             *common, "DATASETS.TEST", "('{}',)".format(dataset), "TEST.IMS_PER_BATCH", "1",
                             "OUTPUT_DIR", str(tmp_path / "eval")], cwd=ROOT, env=ENV, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path / "eval" / "inference" / os.listdir(tmp_path / "eval" / "inference")[0]
    detections = json.loads((folder / "bbox.json").read_text())
    for image, record in zip(images, records):
        mine = [d for d in detections if d["image_id"] == image["id"]]
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (d["bbox"] for d in mine)])
        assert_same_detections(boxes, [d["score"] for d in mine], [d["category_id"] for d in mine], record)

    folder = tmp_path / "photos"
    folder.mkdir()
    for record in records:
        os.symlink(os.path.join(IMAGES, record["file_name"]), folder / record["file_name"])
    result = subprocess.run([sys.executable, os.path.join(ROOT, "demo", "atss_demo.py"), "--config-file", config,
                             "--input", str(folder), "--output", str(tmp_path / "demo"), "--json",
                             "--confidence-threshold", "0", *common], cwd=ROOT, env=ENV, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    written = json.loads((tmp_path / "demo" / "detections.json").read_text())
    for record in records:
        mine = written[record["file_name"]]
        labels = [COCO_CLASSES.index(d["label"]) for d in mine]
        assert_same_detections(torch.tensor([d["box_xyxy"] for d in mine]), [d["score"] for d in mine], labels,
                               record)


@needs_photos
def test_fine_tuning_from_an_mmdetection_checkpoint_keeps_its_conventions(tmp_path):
    """train_net from the mmdetection checkpoint on the raccoon photographs (2 classes: the
    80-class logits are left at their initialisation): finite losses, and the checkpoints it
    writes carry mmdetection's conventions."""
    config = os.path.join(ROOT, "configs", "mmdet", "atss_r50_fpn_1x_coco.yaml")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "train_net.py"), "--config-file", config, "--skip-test", *NARROW,
         "MODEL.WEIGHT", CHECKPOINT, "MODEL.ATSS.NUM_CLASSES", "2", "DATASETS.TRAIN", "('raccoon_train',)",
         "INPUT.MIN_SIZE_TRAIN", "(160,)", "INPUT.MAX_SIZE_TRAIN", "256", "SOLVER.MAX_ITER", "2",
         "SOLVER.IMS_PER_BATCH", "2", "DATALOADER.NUM_WORKERS", "0", "TENSORBOARD.ENABLED", "False",
         "OUTPUT_DIR", str(tmp_path / "finetune")], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "finetune" / "log.txt").read_text()
    assert "holds an mmdetection ATSS model: converted" in log and "iter: 2/2" in log
    conventions = torch.load(tmp_path / "finetune" / "model_final.pth", weights_only=True)["conventions"]
    assert conventions["MODEL.LEGACY_PLUS_ONE"] is False and conventions["MODEL.ATSS.POSTPROCESS"] == "mmdet"
