import glob
import os

import pytest

from atss_core.config import cfg as default_cfg

from ..conftest import CONFIG_DIR


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(CONFIG_DIR, "atss", "*.yaml"))),
                         ids=os.path.basename)
def test_official_configs_merge_unchanged(path):
    cfg = default_cfg.clone()
    cfg.merge_from_file(path)
    assert cfg.MODEL.ATSS_ON and cfg.MODEL.RPN_ONLY
    assert cfg.MODEL.ATSS.TOPK == 9
    assert cfg.DATALOADER.SIZE_DIVISIBILITY == 32


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(CONFIG_DIR, "atss", "ablations", "*.yaml"))),
                         ids=os.path.basename)
def test_ablation_configs_merge_and_differ_from_the_baseline(path):
    cfg = default_cfg.clone()
    cfg.merge_from_file(path)
    baseline = default_cfg.clone()
    baseline.merge_from_file(os.path.join(CONFIG_DIR, "atss", "atss_R_50_FPN_1x.yaml"))
    assert (cfg.MODEL.ATSS.POSITIVE_TYPE, cfg.MODEL.ATSS.REGRESSION_TYPE) != ("ATSS", "BOX")
    assert cfg.MODEL.ATSS.POSITIVE_TYPE in ("ATSS", "SSC", "IoU", "TOPK")
    cfg.MODEL.ATSS.POSITIVE_TYPE, cfg.MODEL.ATSS.REGRESSION_TYPE = "ATSS", "BOX"
    assert cfg == baseline


def test_defaults_have_the_official_atss_values():
    atss = default_cfg.MODEL.ATSS
    assert atss.NUM_CLASSES == 81 and atss.ANCHOR_STRIDES == (8, 16, 32, 64, 128)
    assert atss.REG_LOSS_WEIGHT == 2.0 and atss.NMS_TH == 0.6 and atss.PRE_NMS_TOP_N == 1000
    assert default_cfg.INPUT.PIXEL_MEAN == [102.9801, 115.9465, 122.7717] and default_cfg.INPUT.TO_BGR255


def test_unknown_key_in_overrides_names_it_and_suggests():
    cfg = default_cfg.clone()
    with pytest.raises(KeyError, match=r"unknown config key 'MODEL\.ATSS\.TOPKK'.*did you mean 'MODEL\.ATSS\.TOPK'"):
        cfg.merge_from_list(["MODEL.ATSS.TOPKK", 5])


def test_unknown_key_in_file_names_it_and_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("SOLVER:\n  BASE_RL: 0.1\n")
    cfg = default_cfg.clone()
    with pytest.raises(KeyError, match=r"unknown config key 'SOLVER\.BASE_RL' in .*bad\.yaml.*'SOLVER\.BASE_LR'"):
        cfg.merge_from_file(str(path))


def test_missing_file_and_odd_overrides_are_clear_errors(tmp_path):
    cfg = default_cfg.clone()
    with pytest.raises(FileNotFoundError, match="config file not found"):
        cfg.merge_from_file(str(tmp_path / "nope.yaml"))
    with pytest.raises(ValueError, match="KEY VALUE pairs"):
        cfg.merge_from_list(["SOLVER.BASE_LR"])


def test_overrides_keep_types():
    cfg = default_cfg.clone()
    cfg.merge_from_list(["SOLVER.STEPS", "(10, 20)", "MODEL.ATSS.TOPK", "5"])
    assert cfg.SOLVER.STEPS == (10, 20) and cfg.MODEL.ATSS.TOPK == 5
    with pytest.raises(ValueError):
        cfg.merge_from_list(["MODEL.ATSS.TOPK", "'nine'"])


def test_quickstart_config_builds_a_small_model():
    from atss_core.modeling.detector import build_detection_model

    cfg = default_cfg.clone()
    cfg.merge_from_file(os.path.join(CONFIG_DIR, "quickstart", "atss_R_18_synthetic.yaml"))
    model = build_detection_model(cfg)
    assert cfg.MODEL.DEVICE == "cpu" and cfg.MODEL.BACKBONE.CONV_BODY == "R-18-FPN-RETINANET"
    assert sum(p.numel() for p in model.parameters()) < 5e6


def test_load_config_merges_a_copy_and_leaves_the_global_config_alone(tmp_path):
    from atss_core.config import cfg as global_cfg
    from atss_core.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text("MODEL:\n  ATSS:\n    TOPK: 5\n")
    loaded = load_config(str(path), ["MODEL.ATSS.NUM_CLASSES", 3], freeze=True)
    assert (loaded.MODEL.ATSS.TOPK, loaded.MODEL.ATSS.NUM_CLASSES) == (5, 3)
    assert (global_cfg.MODEL.ATSS.TOPK, global_cfg.MODEL.ATSS.NUM_CLASSES) == (9, 81)
    assert loaded.is_frozen() and not load_config().is_frozen()
