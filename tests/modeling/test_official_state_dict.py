"""Our model's state dict must equal the official one (keys, order, shapes, dtypes) for
every official config, so official checkpoints load unchanged and ours load there."""
import gzip
import json
import os

import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.modeling.detector import build_detection_model

from ..conftest import CONFIG_DIR, ROOT, SHARED_DIR

# a copy of ../shared/spec/official_state_dict_signatures.json (facts about the official
# model), kept here so that a clone or a Docker image still tests the checkpoint format
SIGNATURES = os.path.join(ROOT, "tests", "data", "spec", "official_state_dict_signatures.json.gz")

OFFICIAL_CONFIGS = [
    "atss_R_50_FPN_1x.yaml", "atss_R_101_FPN_1x.yaml", "atss_R_101_FPN_2x.yaml", "atss_X_101_32x8d_FPN_2x.yaml",
    "atss_X_101_64x4d_FPN_2x.yaml", "atss_dcnv2_R_50_FPN_1x.yaml", "atss_dcnv2_R_101_FPN_1x.yaml",
    "atss_dcnv2_R_101_FPN_2x.yaml", "atss_dcnv2_X_101_32x8d_FPN_2x.yaml", "atss_dcnv2_X_101_64x4d_FPN_2x.yaml",
]


@pytest.fixture(scope="module")
def signatures():
    with gzip.open(SIGNATURES, "rt") as f:
        return json.load(f)


def test_the_copy_equals_the_shared_spec(signatures):
    shared = os.path.join(SHARED_DIR, "spec", "official_state_dict_signatures.json")
    if not os.path.exists(shared):
        pytest.skip("{} not found (../shared is not beside this checkout)".format(shared))
    with open(shared) as f:
        assert json.load(f) == signatures


def build(config_name):
    cfg = default_cfg.clone()
    cfg.merge_from_file(os.path.join(CONFIG_DIR, "atss", config_name))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu"])
    return build_detection_model(cfg)


@pytest.mark.parametrize("config_name", OFFICIAL_CONFIGS)
def test_state_dict_equals_the_official_one(signatures, config_name):
    model = build(config_name)
    ours = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in model.state_dict().items()]
    official = signatures[config_name]
    missing = sorted({k for k, _, _ in official} - {k for k, _, _ in ours})
    unexpected = sorted({k for k, _, _ in ours} - {k for k, _, _ in official})
    assert not missing and not unexpected, "missing: {}\nunexpected: {}".format(missing[:10], unexpected[:10])
    assert ours == official


@pytest.mark.parametrize("conv_body,levels,strides", [
    ("R-50-C4", 1, [16]), ("R-50-C5", 1, [32]), ("R-50-FPN", 5, [4, 8, 16, 32, 64]),
    ("R-50-FPN-RETINANET", 5, [8, 16, 32, 64, 128]),
])
def test_official_backbone_builders_give_their_pyramids(conv_body, levels, strides):
    from atss_core.config import cfg as default_cfg
    from atss_core.modeling.backbone import build_backbone

    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.BACKBONE.CONV_BODY", conv_body])
    backbone = build_backbone(cfg)
    with torch.no_grad():
        outputs = backbone(torch.rand(1, 3, 128, 128))
    assert len(outputs) == levels
    assert [128 // o.shape[-1] for o in outputs] == strides
    channels = 1024 if conv_body == "R-50-C4" else 2048 if conv_body == "R-50-C5" else backbone.out_channels
    assert all(o.shape[1] == channels for o in outputs)
