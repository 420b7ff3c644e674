import math

import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.modeling.rpn.atss.atss import BoxCoder


def coder(regression_type):
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.ATSS.REGRESSION_TYPE", regression_type])
    return BoxCoder(cfg)


def random_boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=torch.float64) * 500
    wh = 4 + torch.rand(n, 2, generator=g, dtype=torch.float64) * 300
    return torch.cat([xy, xy + wh], dim=1)


@pytest.mark.parametrize("regression_type", ["BOX", "POINT"])
def test_decode_inverts_encode(regression_type):
    anchors, gt = random_boxes(200, 0), random_boxes(200, 1)
    c = coder(regression_type)
    torch.testing.assert_close(c.decode(c.encode(gt, anchors), anchors), gt)


def test_box_encoding_by_hand():
    anchor = torch.tensor([[0.0, 0.0, 9.0, 19.0]])  # w 10, h 20, centre (4.5, 9.5)
    gt = torch.tensor([[5.0, 0.0, 14.0, 39.0]])  # w 10, h 40, centre (9.5, 19.5)
    target = coder("BOX").encode(gt, anchor)
    torch.testing.assert_close(target, torch.tensor([[10 * 5 / 10, 10 * 10 / 20, 0.0, 5 * math.log(2.0)]]))


def test_point_encoding_by_hand():
    anchor = torch.tensor([[0.0, 0.0, 63.0, 63.0]])  # 64 wide, centre 31.5; unit 64 / 8 = 8
    gt = torch.tensor([[15.5, 23.5, 63.5, 95.5]])
    target = coder("POINT").encode(gt, anchor)
    torch.testing.assert_close(target, torch.tensor([[2.0, 1.0, 4.0, 8.0]]))


def test_box_decode_clamps_huge_sizes():
    anchor = torch.tensor([[0.0, 0.0, 15.0, 15.0]])
    box = coder("BOX").decode(torch.tensor([[0.0, 0.0, 1000.0, 1000.0]]), anchor)
    assert torch.isfinite(box).all()
    assert (box[0, 2] - box[0, 0] + 1).item() == pytest.approx(16 * 1000 / 16, rel=1e-4)


def test_rcnn_coder_at_the_official_path_round_trips_and_decodes_several_sets_per_box():
    from atss_core.modeling.box_coder import BoxCoder as RCNNBoxCoder

    coder = RCNNBoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
    proposals = random_boxes(30, 7).float()
    gts = random_boxes(30, 8).float()
    deltas = coder.encode(gts, proposals)
    torch.testing.assert_close(coder.decode(deltas, proposals), gts, rtol=1e-4, atol=1e-3)
    # by hand: a 10x10 box (+1 widths) centred at x1 + w / 2, moved by dx = 0.1 (weight 1) and doubled in width
    unit = RCNNBoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
    box = torch.tensor([[0.0, 0.0, 9.0, 9.0]])
    decoded = unit.decode(torch.tensor([[0.1, 0.0, math.log(2.0), 0.0]]), box)
    torch.testing.assert_close(decoded, torch.tensor([[-4.0, 0.0, 15.0, 9.0]]))
    # [N, 4k]: k delta sets per box (one per class in the R-CNN heads), decoded set by set
    two_sets = torch.cat([deltas, torch.zeros_like(deltas)], dim=1)
    both = coder.decode(two_sets, proposals)
    torch.testing.assert_close(both[:, :4], coder.decode(deltas, proposals))
    torch.testing.assert_close(both[:, 4:], proposals, rtol=1e-5, atol=1e-4)


def test_rcnn_coder_clamps_only_large_width_deltas():
    from atss_core.modeling.box_coder import BoxCoder as RCNNBoxCoder

    coder = RCNNBoxCoder(weights=(1.0, 1.0, 1.0, 1.0), bbox_xform_clip=math.log(4.0))
    box = torch.tensor([[0.0, 0.0, 9.0, 9.0]])
    huge = coder.decode(torch.tensor([[0.0, 0.0, 50.0, -50.0]]), box)
    assert (huge[0, 2] - huge[0, 0] + 1).item() == pytest.approx(40.0)  # clamped at 4x the width
    assert (huge[0, 3] - huge[0, 1] + 1).item() == pytest.approx(10.0 * math.exp(-50.0), abs=1e-6)  # not clamped below


def test_atss_coder_takes_explicit_settings_without_a_config():
    cfg = default_cfg.clone()
    from_cfg = BoxCoder(cfg)
    explicit = BoxCoder(None, regression_type="BOX", point_unit=8.0, plus_one=1)
    anchors, gts = random_boxes(20, 3).float(), random_boxes(20, 4).float()
    assert torch.equal(from_cfg.encode(gts, anchors), explicit.encode(gts, anchors))
    with pytest.raises(ValueError, match="regression_type must be 'BOX' or 'POINT'"):
        BoxCoder(None, regression_type="LTRB")
