import math

import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.modeling.backbone import build_backbone
from atss_core.modeling.rpn.atss.atss import ATSSHead


def small_cfg(**overrides):
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", "MODEL.ATSS.NUM_CLASSES", 5, "MODEL.ATSS.NUM_CONVS", 2])
    for key, value in overrides.items():
        cfg.merge_from_list([key, value])
    return cfg


def test_head_output_shapes_and_prior_init():
    torch.manual_seed(0)
    cfg = small_cfg(**{"MODEL.ATSS.ASPECT_RATIOS": "(0.5, 1.0)"})
    head = ATSSHead(cfg, in_channels=32)
    features = [torch.randn(2, 32, s, s) for s in (16, 8, 4, 2, 1)]
    logits, boxes, centerness = head(features)
    for level, size in enumerate((16, 8, 4, 2, 1)):
        assert logits[level].shape == (2, 2 * 4, size, size)
        assert boxes[level].shape == (2, 2 * 4, size, size)
        assert centerness[level].shape == (2, 2, size, size)
    assert torch.allclose(head.cls_logits.bias, torch.full((8,), -math.log(99.0)))
    assert head.cls_tower[0].weight.std().item() == pytest.approx(0.01, rel=0.2)


def test_point_regression_is_non_negative_and_needs_one_anchor():
    head = ATSSHead(small_cfg(**{"MODEL.ATSS.REGRESSION_TYPE": "POINT"}), in_channels=32)
    _, boxes, _ = head([torch.randn(1, 32, 4, 4) for _ in range(5)])
    assert all((b >= 0).all() for b in boxes)
    # officially the POINT distances start at 4 (BOX at 0)
    assert head.bbox_pred.bias.tolist() == [4.0] * 4
    assert ATSSHead(small_cfg(), in_channels=32).bbox_pred.bias.tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="one anchor per location"):
        ATSSHead(small_cfg(**{"MODEL.ATSS.REGRESSION_TYPE": "POINT", "MODEL.ATSS.SCALES_PER_OCTAVE": 2}), 32)


def test_dcn_tower_replaces_the_last_conv():
    torch.manual_seed(0)
    head = ATSSHead(small_cfg(**{"MODEL.ATSS.USE_DCN_IN_TOWER": True}), in_channels=32)
    for tower in (head.cls_tower, head.bbox_tower):  # NUM_CONVS 2: the second conv is deformable
        assert type(tower[3]).__name__ == "DFConv2d" and type(tower[0]).__name__ == "Conv2d"
        assert tower[3].with_modulated_dcn and tower[3].offset.out_channels == 27  # DCNv2: 18 offsets + 9 masks
        assert tower[3].offset.weight.std().item() == pytest.approx(0.01, rel=0.2)  # the head's N(0, 0.01)
    # with zero offsets (mask 0.5) the deformable layer is half the plain convolution
    dcn = head.cls_tower[3]
    torch.nn.init.zeros_(dcn.offset.weight)
    x = torch.randn(1, 32, 6, 6)
    expected = 0.5 * torch.nn.functional.conv2d(x, dcn.conv.weight, padding=1) + dcn.conv.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(dcn(x), expected, rtol=1e-4, atol=1e-5)
    logits, _, _ = head([torch.randn(1, 32, 6, 6) for _ in range(5)])
    assert logits[0].shape == (1, 4, 6, 6)


def test_narrow_backbone_outputs_p3_to_p7_and_freezes_the_stem():
    cfg = small_cfg(**{
        "MODEL.BACKBONE.CONV_BODY": "R-50-FPN-RETINANET", "MODEL.RESNETS.BACKBONE_OUT_CHANNELS": 32,
        "MODEL.RESNETS.STEM_OUT_CHANNELS": 16, "MODEL.RESNETS.RES2_OUT_CHANNELS": 32,
        "MODEL.RESNETS.WIDTH_PER_GROUP": 8, "MODEL.RETINANET.USE_C5": False,
    })
    backbone = build_backbone(cfg)
    features = backbone(torch.randn(1, 3, 128, 96))
    assert [tuple(f.shape) for f in features] == [(1, 32, 16, 12), (1, 32, 8, 6), (1, 32, 4, 3), (1, 32, 2, 2),
                                                  (1, 32, 1, 1)]
    assert not any(p.requires_grad for p in backbone.body.stem.parameters())
    assert not any(p.requires_grad for p in backbone.body.layer1.parameters())
    assert all(p.requires_grad for p in backbone.body.layer2.parameters())


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown backbone .*'R-9-FPN'"):
        build_backbone(small_cfg(**{"MODEL.BACKBONE.CONV_BODY": "R-9-FPN"}))


def test_resnet18_basic_block_backbone():
    cfg = small_cfg(**{
        "MODEL.BACKBONE.CONV_BODY": "R-18-FPN-RETINANET", "MODEL.RESNETS.TRANS_FUNC": "BasicBlockWithGN",
        "MODEL.RESNETS.STEM_FUNC": "StemWithGN", "MODEL.RESNETS.RES2_OUT_CHANNELS": 64,
        "MODEL.RESNETS.BACKBONE_OUT_CHANNELS": 64, "MODEL.RETINANET.USE_C5": False,
        "MODEL.BACKBONE.FREEZE_CONV_BODY_AT": 0,
    })
    backbone = build_backbone(cfg)
    body = backbone.body
    assert [len(getattr(body, "layer{}".format(i))) for i in range(1, 5)] == [2, 2, 2, 2]
    assert body.layer1[0].downsample is None and body.layer2[0].conv1.stride == (2, 2)
    assert body.layer4[1].conv2.weight.shape == (512, 512, 3, 3)
    features = backbone(torch.randn(2, 3, 64, 64))
    assert [tuple(f.shape[-2:]) for f in features] == [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    # torchvision's resnet18 has the same convolution shapes (11.7M parameters with its fc)
    import torchvision
    ours = sorted(tuple(p.shape) for n, p in body.named_parameters() if p.dim() == 4)
    theirs = sorted(tuple(p.shape) for n, p in torchvision.models.resnet18().named_parameters() if p.dim() == 4)
    assert ours == theirs
