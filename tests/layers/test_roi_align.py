import pytest
import torch
import torchvision

from atss_core.layers import ROIAlign, roi_align

from .roi_cases import edge_rois, make_rois


def oracle(x, rois, output_size, scale, ratio):
    return torchvision.ops.roi_align(x, rois, output_size, scale, ratio, aligned=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("output_size,scale,ratio", [(7, 0.25, 2), (7, 0.125, 0), ((5, 3), 1.0, 1), (14, 0.0625, 0)])
def test_roi_align_forward_backward_match_torchvision(device, dtype, output_size, scale, ratio):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 6, 23, 31, generator=g, dtype=dtype)
    rois = torch.cat([make_rois(40, 2, 23, 31, scale, g, dtype), edge_rois(23, 31, scale, dtype)])
    grad = torch.randn(rois.shape[0], 6, *torch.nn.modules.utils._pair(output_size), generator=g, dtype=dtype)

    ours_x = x.clone().to(device).requires_grad_()
    ours = roi_align(ours_x, rois.to(device), output_size, scale, ratio)
    ours.backward(grad.to(device))
    ref_x = x.clone().requires_grad_()
    ref = oracle(ref_x, rois, output_size, scale, ratio)
    ref.backward(grad)

    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(ours.detach().cpu(), ref.detach(), **tol)
    torch.testing.assert_close(ours_x.grad.cpu(), ref_x.grad, **tol)


def test_roi_align_empty_rois(device):
    x = torch.randn(1, 4, 10, 10, device=device, requires_grad=True)
    out = roi_align(x, torch.zeros(0, 5, device=device), 7, 0.5, 2)
    assert out.shape == (0, 4, 7, 7)
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_roi_align_non_contiguous_input(device):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 12, 16, 8, generator=g).to(device).permute(0, 3, 2, 1)  # [2, 8, 16, 12]
    assert not x.is_contiguous()
    rois = make_rois(20, 2, 16, 12, 0.5, g).to(device)[:, [0, 1, 2, 3, 4]]
    ours = ROIAlign((4, 4), 0.5, 2)(x, rois)
    torch.testing.assert_close(ours.cpu(), oracle(x.contiguous().cpu(), rois.cpu(), 4, 0.5, 2))


def test_roi_align_gradcheck(device):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 6, 7, generator=g, dtype=torch.float64).to(device).requires_grad_()
    rois = torch.tensor([[0, 0.5, 1.2, 18.3, 20.1], [0, -3, -2, 10, 9.5], [0, 4, 4, 4, 4]], dtype=torch.float64)
    # the CUDA backward scatters with atomicAdd: the summation order may differ between runs
    assert torch.autograd.gradcheck(lambda t: roi_align(t, rois.to(device), 3, 0.33, 2), (x,),
                                    nondet_tol=1e-10 if device.type == "cuda" else 0.0)


@pytest.mark.parametrize("bad_index", [1.0, -1.0, float("nan")])
def test_roi_align_rejects_a_batch_index_outside_the_batch_on_every_device(device, bad_index):
    """On the GPU an out-of-range index would read and scatter outside the feature map."""
    from atss_core import _C

    x = torch.randn(1, 3, 8, 8, device=device)
    rois = torch.tensor([[0.0, 0, 0, 4, 4], [bad_index, 1, 1, 5, 5]], device=device)
    with pytest.raises(ValueError, match="rois\\[:, 0\\] \\(batch index\\) must lie in \\[0, 0\\]"):
        roi_align(x, rois, 2, 1.0, 2)
    with pytest.raises(ValueError, match="ROIAlign backward: rois\\[:, 0\\] \\(batch index\\)"):
        _C.roi_align_backward(torch.ones(2, 3, 2, 2, device=device), rois, 1.0, 2, 2, 1, 3, 8, 8, 2)


def test_roi_align_rejects_bad_arguments():
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match="rois must have shape \\[K, 5\\]"):
        roi_align(x, torch.zeros(2, 4), 7, 1.0, 2)
    with pytest.raises(ValueError, match="input must be a 4-D tensor"):
        roi_align(x[0], torch.zeros(2, 5), 7, 1.0, 2)
    with pytest.raises(TypeError, match="rois must have the dtype of input"):
        roi_align(x, torch.zeros(2, 5, dtype=torch.float64), 7, 1.0, 2)
    with pytest.raises(ValueError, match="batch index"):
        roi_align(x, torch.tensor([[1.0, 0, 0, 4, 4]]), 7, 1.0, 2)
    with pytest.raises(ValueError, match="output_size must be positive"):
        roi_align(x, torch.zeros(2, 5), 0, 1.0, 2)
