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
