import pytest
import torch
import torchvision

from atss_core.structures import BoxList
from atss_core.structures.bounding_box import FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM
from atss_core.structures.boxlist_ops import (boxlist_iou, boxlist_ml_nms, boxlist_nms, cat_boxlist,
                                              remove_small_boxes)


def make_boxlist(n=20, size=(200, 100), seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * torch.tensor([size[0] * 0.8, size[1] * 0.8])
    wh = 1 + torch.rand(n, 2, generator=g) * 40
    boxes = BoxList(torch.cat([xy, xy + wh], dim=1), size)
    boxes.add_field("labels", torch.randint(1, 4, (n,), generator=g))
    boxes.add_field("scores", torch.rand(n, generator=g))
    return boxes


def test_xywh_round_trip_uses_plus_one_widths():
    boxes = BoxList([[10, 20, 29, 59]], (100, 100))
    xywh = boxes.convert("xywh")
    assert xywh.bbox.tolist() == [[10, 20, 20, 40]]
    assert torch.equal(xywh.convert("xyxy").bbox, boxes.bbox)
    assert xywh.area().item() == boxes.area().item() == 800


def test_resize_scales_each_axis():
    boxes = BoxList([[10, 20, 30, 40]], (100, 50))
    same = boxes.resize((200, 100))
    assert same.bbox.tolist() == [[20, 40, 60, 80]] and same.size == (200, 100)
    stretched = boxes.resize((300, 100))
    assert stretched.bbox.tolist() == [[30, 40, 90, 80]]


def test_transpose_is_an_involution_and_keeps_fields():
    boxes = make_boxlist()
    flipped = boxes.transpose(FLIP_LEFT_RIGHT)
    assert flipped.bbox[0, 0].item() == pytest.approx(200 - boxes.bbox[0, 2].item() - 1)
    torch.testing.assert_close(flipped.transpose(FLIP_LEFT_RIGHT).bbox, boxes.bbox)
    torch.testing.assert_close(boxes.transpose(FLIP_TOP_BOTTOM).transpose(FLIP_TOP_BOTTOM).bbox, boxes.bbox)
    one = BoxList(torch.tensor([[10.0, 20.0, 30.0, 45.0]]), (200, 100))
    assert one.transpose(FLIP_LEFT_RIGHT).bbox.tolist() == [[200 - 30 - 1, 20.0, 200 - 10 - 1, 45.0]]
    # the official top-bottom flip has no -1 (unlike left-right); kept as it is
    assert one.transpose(FLIP_TOP_BOTTOM).bbox.tolist() == [[10.0, 100 - 45, 30.0, 100 - 20]]
    assert torch.equal(flipped.get_field("labels"), boxes.get_field("labels"))


def test_crop_moves_and_clamps_boxes():
    boxes = BoxList([[10, 10, 50, 50], [0, 0, 5, 5]], (100, 100))
    cropped = boxes.crop((20, 20, 60, 60))
    assert cropped.size == (40, 40)
    assert cropped.bbox.tolist() == [[0, 0, 30, 30], [0, 0, 0, 0]]


def test_clip_to_image_removes_empty_boxes():
    boxes = BoxList([[-10, -5, 50, 60], [120, 10, 150, 20], [10, 10, 10, 30]], (100, 50))
    boxes.add_field("labels", torch.tensor([1, 2, 3]))
    clipped = boxes.clip_to_image(remove_empty=True)
    assert clipped.bbox.tolist() == [[0, 0, 50, 49]]
    assert clipped.get_field("labels").tolist() == [1]


def test_remove_small_boxes_uses_plus_one_sizes():
    boxes = BoxList([[0, 0, 9, 9], [0, 0, 8, 20], [5, 5, 30, 30]], (100, 100))
    assert remove_small_boxes(boxes, 10).bbox.tolist() == [[0, 0, 9, 9], [5, 5, 30, 30]]


def test_boxlist_iou_matches_torchvision_with_shifted_boxes():
    a, b = make_boxlist(15, seed=1), make_boxlist(9, seed=2)
    shift = torch.tensor([0.0, 0.0, 1.0, 1.0])
    expected = torchvision.ops.box_iou(a.bbox + shift, b.bbox + shift)
    torch.testing.assert_close(boxlist_iou(a, b), expected)
    with pytest.raises(ValueError, match="same image"):
        boxlist_iou(a, BoxList(b.bbox, (10, 10)))


def test_cat_boxlist_concatenates_boxes_and_fields():
    a, b = make_boxlist(5, seed=3), make_boxlist(7, seed=4)
    both = cat_boxlist([a, b])
    assert len(both) == 12
    assert torch.equal(both.get_field("scores"), torch.cat([a.get_field("scores"), b.get_field("scores")]))
    b.add_field("extra", torch.zeros(7))
    with pytest.raises(ValueError, match="fields differ"):
        cat_boxlist([a, b])


def test_boxlist_nms_and_ml_nms():
    boxes = BoxList([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10]], (100, 100), mode="xyxy")
    boxes.add_field("scores", torch.tensor([0.9, 0.8, 0.7, 0.6]))
    boxes.add_field("labels", torch.tensor([1, 1, 1, 2]))
    kept = boxlist_nms(boxes, 0.5)
    assert kept.get_field("scores").tolist() == pytest.approx([0.9, 0.7])
    kept = boxlist_ml_nms(boxes, 0.5)
    assert kept.get_field("scores").tolist() == pytest.approx([0.9, 0.7, 0.6])
    assert len(boxlist_ml_nms(boxes, 0.5, max_proposals=2)) == 2
    assert boxlist_nms(boxes.convert("xywh"), 0.5).mode == "xywh"


def test_indexing_and_empty_boxlists():
    boxes = make_boxlist()
    subset = boxes[boxes.get_field("labels") == 1]
    assert torch.all(subset.get_field("labels") == 1) and len(subset) == int((boxes.get_field("labels") == 1).sum())
    empty = BoxList(torch.zeros(0, 4), (10, 10))
    assert len(empty) == 0 and empty.area().numel() == 0
    empty.add_field("scores", torch.zeros(0))
    assert len(boxlist_nms(empty, 0.5)) == 0


def test_bad_boxes_raise_clear_errors():
    with pytest.raises(ValueError, match="last dimension of bbox should have size 4"):
        BoxList(torch.zeros(3, 5), (10, 10))
    with pytest.raises(ValueError, match="mode should be"):
        BoxList(torch.zeros(3, 4), (10, 10), mode="cxcywh")
    with pytest.raises(KeyError, match="no field 'scores'"):
        BoxList(torch.zeros(3, 4), (10, 10)).get_field("scores")


def test_ml_nms_keeps_the_input_order_as_the_official_kernel():
    """The kept boxes come back in their input order, not by score: the post-processor's
    output order and the multi-scale test's concatenation depend on it."""
    boxes = BoxList([[50, 50, 60, 60], [0, 0, 10, 10], [1, 1, 10, 10], [80, 0, 90, 9]], (100, 100), mode="xyxy")
    boxes.add_field("scores", torch.tensor([0.3, 0.9, 0.5, 0.7]))
    boxes.add_field("labels", torch.tensor([1, 1, 1, 2]))
    kept = boxlist_ml_nms(boxes, 0.5)
    assert kept.get_field("scores").tolist() == pytest.approx([0.3, 0.9, 0.7])  # the 0.5 box is suppressed
