import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.modeling.rpn.anchor_generator import (AnchorGenerator, anchor_grid, generate_anchors,
                                                     make_anchor_generator_atss)
from atss_core.structures import to_image_list


def test_cell_anchors_follow_the_atss_code():
    # the ATSS base box is (0.5, 0.5, stride - 0.5, stride - 0.5): stride 8 is centred at 4.0
    # (Detectron's (0, 0, 7, 7) would be 3.5), and size 64 spans 4 -/+ 31.5
    assert generate_anchors(8, (64,), (1.0,)).tolist() == [[-27.5, -27.5, 35.5, 35.5]]
    # on a 16 base centred at 8: ratio 0.5 gives w = round(sqrt(256 / 0.5)) = 23, h = round(11.5) = 12;
    # ratio 2 gives w = round(sqrt(128)) = 11, h = 22
    anchors = generate_anchors(16, (16,), (0.5, 2.0))
    assert anchors.tolist() == [[-3.0, 2.5, 19.0, 13.5], [3.0, -2.5, 13.0, 18.5]]
    # several sizes and ratios: ratio-major, then size (the channel order of official checkpoints)
    anchors = generate_anchors(16, (16, 32), (0.5, 2.0))
    assert anchors.tolist() == [[-3.0, 2.5, 19.0, 13.5], [-14.5, -3.5, 30.5, 19.5],
                                [3.0, -2.5, 13.0, 18.5], [-2.5, -13.5, 18.5, 29.5]]


def test_atss_generator_grid_and_visibility():
    cfg = default_cfg.clone()
    generator = make_anchor_generator_atss(cfg)
    assert generator.num_anchors_per_location() == [1, 1, 1, 1, 1]
    images = to_image_list([torch.zeros(3, 60, 90)], size_divisible=32)
    features = [torch.zeros(1, 4, 64 // s, 96 // s) for s in (8, 16, 32)] + [torch.zeros(1, 4, 1, 2),
                                                                               torch.zeros(1, 4, 1, 1)]
    anchors = generator(images, features)
    assert len(anchors) == 1 and len(anchors[0]) == 5
    p3 = anchors[0][0]
    assert len(p3) == 8 * 12 and p3.size == (90, 60)
    # row-major over (y, x): the second anchor is shifted by one stride in x
    assert (p3.bbox[1] - p3.bbox[0]).tolist() == [8.0, 0.0, 8.0, 0.0]
    assert (p3.bbox[12] - p3.bbox[0]).tolist() == [0.0, 8.0, 0.0, 8.0]
    # straddle_thresh 0: 64-pixel anchors at the border stick out of a 90x60 image
    assert not p3.get_field("visibility").any()
    # on a 90x80 image, P3's 64-pixel anchors centred at 4 + 8i fit for x in columns 4..6
    # (x1 = 4 + 8i - 31.5 >= 0, x2 = 4 + 8i + 31.5 < 90) and rows 4..5: 6 visible; none above P3
    images = to_image_list([torch.zeros(3, 80, 90)], size_divisible=32)
    features = [torch.zeros(1, 4, 96 // s, 96 // s) for s in (8, 16, 32)] + [torch.zeros(1, 4, 2, 2),
                                                                              torch.zeros(1, 4, 1, 1)]
    levels = generator(images, features)[0]
    assert [int(level.get_field("visibility").sum()) for level in levels] == [6, 0, 0, 0, 0]
    visible = levels[0].bbox[levels[0].get_field("visibility")]
    assert sorted({(x1 + 31.5 - 4) / 8 for x1 in visible[:, 0].tolist()}) == [4, 5, 6]
    assert sorted({(y1 + 31.5 - 4) / 8 for y1 in visible[:, 1].tolist()}) == [4, 5]


def test_negative_straddle_thresh_keeps_everything_and_octave_scales():
    generator = AnchorGenerator(((32, 40.3),), (0.5, 1.0), (16,), straddle_thresh=-1)
    assert generator.num_anchors_per_location() == [4]
    anchors = generator(to_image_list([torch.zeros(3, 32, 32)]), [torch.zeros(1, 1, 2, 2)])[0][0]
    assert len(anchors) == 16 and anchors.get_field("visibility").all()
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.ATSS.SCALES_PER_OCTAVE", 3])
    cell = make_anchor_generator_atss(cfg).cell_anchors
    widths = [(a[:, 2] - a[:, 0] + 1).tolist() for a in cell][0]
    assert widths == pytest.approx([64.0, 64.0 * 2 ** (1 / 3), 64.0 * 2 ** (2 / 3)])


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.trace's deprecation notice
def test_traced_anchor_grid_follows_the_feature_size_as_the_generator_does():
    # the exported graph traces anchor_grid once and runs it at every input size: its grid must be
    # the eager generator's at each size (and the arange(0, W * stride, stride) of the ATSS code)
    generator = make_anchor_generator_atss(default_cfg.clone())
    for level, (stride, cell) in enumerate(zip(generator.strides, generator.cell_anchors)):
        traced = torch.jit.trace(lambda feature: anchor_grid(cell, stride, feature.shape[2], feature.shape[3]),
                                 torch.zeros(1, 1, 3, 5))
        for height, width in [(1, 1), (3, 5), (7, 2), (25, 42), (100, 167)]:
            expected = generator.grid_anchors([(height, width)] * (level + 1))[level]
            assert torch.equal(traced(torch.zeros(1, 1, height, width)), expected)
            shift_x = torch.arange(0, width * stride, step=stride, dtype=torch.float32).repeat(height)
            shift_y = torch.arange(0, height * stride, step=stride, dtype=torch.float32).repeat_interleave(width)
            official = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)[:, None, :] + cell[None, :, :]
            assert torch.equal(expected, official.reshape(-1, 4))


def test_mismatched_anchor_levels_name_the_config_keys():
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.ATSS.ANCHOR_STRIDES", (8, 16)])
    with pytest.raises(ValueError, match=r"MODEL\.ATSS\.ANCHOR_STRIDES \(\(8, 16\)\) and ANCHOR_SIZES"):
        make_anchor_generator_atss(cfg)
