import pytest
import torch
import torchvision

from atss_core.layers import ml_nms, nms


def random_boxes(n, dtype=torch.float32, scale=100.0, generator=None):
    xy = torch.rand(n, 2, generator=generator, dtype=torch.float64) * scale
    wh = torch.rand(n, 2, generator=generator, dtype=torch.float64) * scale / 2
    return torch.cat([xy, xy + wh], dim=1).to(dtype)


def oracle_nms(boxes, scores, thresh):
    """torchvision NMS on boxes grown by one pixel reproduces the legacy +1 areas."""
    shifted = boxes.clone()
    shifted[:, 2:] += 1
    return torchvision.ops.nms(shifted, scores, thresh)


def oracle_ml_nms(boxes, scores, labels, thresh):
    shifted = boxes.clone()
    shifted[:, 2:] += 1
    return torchvision.ops.batched_nms(shifted, scores, labels.long(), thresh)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n", [1, 7, 300, 2000])
@pytest.mark.parametrize("thresh", [0.3, 0.5, 0.7])
def test_nms_matches_torchvision(device, dtype, n, thresh):
    g = torch.Generator().manual_seed(n)
    boxes = random_boxes(n, dtype, generator=g).to(device)
    scores = torch.rand(n, generator=g, dtype=torch.float64).to(dtype).to(device)
    keep = nms(boxes, scores, thresh)
    assert keep.dtype == torch.int64 and keep.device == boxes.device
    assert torch.equal(keep.cpu(), oracle_nms(boxes.cpu(), scores.cpu(), thresh))


def test_nms_keeps_in_descending_score_order(device):
    g = torch.Generator().manual_seed(0)
    boxes = random_boxes(500, generator=g).to(device)
    scores = torch.rand(500, generator=g).to(device)
    kept_scores = scores[nms(boxes, scores, 0.5)]
    assert kept_scores.numel() > 10
    assert torch.all(kept_scores[:-1] >= kept_scores[1:])


def test_nms_empty(device):
    keep = nms(torch.zeros(0, 4, device=device), torch.zeros(0, device=device), 0.5)
    assert keep.shape == (0,) and keep.dtype == torch.int64
    keep = ml_nms(torch.zeros(0, 4, device=device), torch.zeros(0, device=device), torch.zeros(0, device=device), 0.5)
    assert keep.shape == (0,)


def test_nms_identical_boxes_keeps_best(device):
    boxes = torch.tensor([[10.0, 10.0, 50.0, 60.0]], device=device).repeat(6, 1)
    scores = torch.tensor([0.1, 0.9, 0.3, 0.8, 0.2, 0.5], device=device)
    assert nms(boxes, scores, 0.5).tolist() == [1]


def test_nms_zero_area_boxes_use_plus_one_convention(device):
    # x2 == x1 is a 1-pixel-wide box under the +1 convention: two such boxes on the
    # same pixel fully overlap, one pixel apart they do not overlap at all
    boxes = torch.tensor([[5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 5.0, 5.0], [6.0, 5.0, 6.0, 5.0]], device=device)
    scores = torch.tensor([0.9, 0.8, 0.7], device=device)
    assert nms(boxes, scores, 0.5).tolist() == [0, 2]
    assert torch.equal(nms(boxes, scores, 0.5).cpu(), oracle_nms(boxes.cpu(), scores.cpu(), 0.5))


def test_nms_huge_and_negative_coordinates(device):
    g = torch.Generator().manual_seed(3)
    boxes = random_boxes(400, torch.float64, scale=1e6, generator=g) - 5e5
    scores = torch.rand(400, generator=g, dtype=torch.float64)
    keep = nms(boxes.to(device), scores.to(device), 0.4)
    assert torch.equal(keep.cpu(), oracle_nms(boxes, scores, 0.4))
    assert (boxes[:, 0] < 0).any()


def test_nms_non_contiguous_inputs(device):
    g = torch.Generator().manual_seed(5)
    wide = torch.cat([random_boxes(300, generator=g), random_boxes(300, generator=g)], dim=1).to(device)
    boxes = wide[:, ::2]  # non-contiguous view
    scores = torch.rand(300, 2, generator=g).to(device)[:, 1]
    assert not boxes.is_contiguous() and not scores.is_contiguous()
    keep = nms(boxes, scores, 0.5)
    assert torch.equal(keep.cpu(), oracle_nms(boxes.contiguous().cpu(), scores.contiguous().cpu(), 0.5))


@pytest.mark.parametrize("label_dtype", [torch.int64, torch.float32])
def test_ml_nms_matches_per_class_nms(device, label_dtype):
    g = torch.Generator().manual_seed(11)
    boxes = random_boxes(1000, generator=g).to(device)
    scores = torch.rand(1000, generator=g).to(device)
    labels = torch.randint(1, 6, (1000,), generator=g).to(device).to(label_dtype)
    keep = ml_nms(boxes, scores, labels, 0.5)
    expected = oracle_ml_nms(boxes.cpu(), scores.cpu(), labels.cpu(), 0.5)
    assert torch.equal(keep.cpu(), expected)
    # a plain NMS would drop more: overlapping boxes of different labels survive
    assert keep.numel() > nms(boxes, scores, 0.5).numel()


def test_ml_nms_keeps_overlapping_boxes_of_other_labels(device):
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]] * 3, device=device)
    scores = torch.tensor([0.9, 0.8, 0.7], device=device)
    labels = torch.tensor([1, 2, 1], device=device)
    assert ml_nms(boxes, scores, labels, 0.5).tolist() == [0, 1]


def test_nms_rejects_bad_arguments():
    boxes = torch.rand(5, 4)
    with pytest.raises(ValueError, match="boxes must have shape \\[N, 4\\]"):
        nms(torch.rand(5, 5), torch.rand(5), 0.5)
    with pytest.raises(ValueError, match="boxes must be a 2-D tensor"):
        nms(torch.rand(20), torch.rand(5), 0.5)
    with pytest.raises(TypeError, match="boxes must be float32 or float64"):
        nms(boxes.long(), torch.rand(5), 0.5)
    with pytest.raises(TypeError, match="scores must have the dtype of boxes"):
        nms(boxes, torch.rand(5, dtype=torch.float64), 0.5)
    with pytest.raises(ValueError, match="scores has 4 entries but boxes has 5"):
        nms(boxes, torch.rand(4), 0.5)
    with pytest.raises(ValueError, match="labels has 3 entries"):
        ml_nms(boxes, torch.rand(5), torch.ones(3), 0.5)


def test_cuda_nms_limit_is_the_kernel_grid_limit():
    from atss_core import _C

    assert _C.NMS_CUDA_MAX_BOXES == 65535 * 64  # CUDA's grid.y cap times 64 boxes per mask word


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device; the CUDA variant runs where a GPU exists")
def test_cuda_nms_above_its_limit_is_a_clear_error():
    from atss_core import _C

    n = _C.NMS_CUDA_MAX_BOXES + 1
    boxes = torch.zeros(n, 4, device="cuda")
    with pytest.raises(ValueError, match="at most {} boxes on CUDA".format(_C.NMS_CUDA_MAX_BOXES)):
        nms(boxes, torch.zeros(n, device="cuda"), 0.5)
