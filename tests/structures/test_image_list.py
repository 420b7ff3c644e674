import pytest
import torch

from atss_core.structures import ImageList, to_image_list


def test_pads_to_the_largest_image_rounded_to_size_divisible():
    a = torch.ones(3, 50, 70)
    b = torch.full((3, 64, 33), 2.0)
    batch = to_image_list([a, b], size_divisible=32)
    assert batch.tensors.shape == (2, 3, 64, 96)
    assert batch.image_sizes == [(50, 70), (64, 33)]
    assert torch.equal(batch.tensors[0, :, :50, :70], a) and batch.tensors[0, :, 50:].abs().sum() == 0
    assert torch.equal(batch.tensors[1, :, :, :33], b) and batch.tensors[1, :, :, 33:].abs().sum() == 0


def test_tensor_inputs_and_idempotence():
    single = to_image_list(torch.zeros(3, 10, 20))
    assert single.tensors.shape == (1, 3, 10, 20) and single.image_sizes == [(10, 20)]
    padded = to_image_list(torch.zeros(2, 3, 10, 20), size_divisible=8)
    assert padded.tensors.shape == (2, 3, 16, 24)
    assert to_image_list(padded) is padded
    assert isinstance(padded.to("cpu"), ImageList)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="empty list"):
        to_image_list([])
    with pytest.raises(ValueError, match=r"\[C, H, W\]"):
        to_image_list([torch.zeros(10, 10)])
    with pytest.raises(TypeError, match="unsupported type"):
        to_image_list("image.jpg")
