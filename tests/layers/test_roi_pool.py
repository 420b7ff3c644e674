import pytest
import torch
import torchvision

from atss_core.layers import ROIPool, roi_pool

from .roi_cases import edge_rois, make_rois


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("output_size,scale", [(7, 0.25), ((3, 5), 1.0), (2, 0.125)])
def test_roi_pool_forward_backward_match_torchvision(device, dtype, output_size, scale):
    g = torch.Generator().manual_seed(0)
    # distinct values so that the argmax is unique and both implementations pick the same pixel
    x = torch.randperm(2 * 5 * 19 * 27, generator=g).to(dtype).reshape(2, 5, 19, 27) / 100
    rois = torch.cat([make_rois(40, 2, 19, 27, scale, g, dtype), edge_rois(19, 27, scale, dtype)])
    size = torch.nn.modules.utils._pair(output_size)
    grad = torch.randn(rois.shape[0], 5, *size, generator=g, dtype=dtype)

    ours_x = x.clone().to(device).requires_grad_()
    ours = ROIPool(output_size, scale)(ours_x, rois.to(device))
    ours.backward(grad.to(device))
    ref_x = x.clone().requires_grad_()
    ref = torchvision.ops.roi_pool(ref_x, rois, output_size, scale)
    ref.backward(grad)

    torch.testing.assert_close(ours.detach().cpu(), ref.detach())
    torch.testing.assert_close(ours_x.grad.cpu(), ref_x.grad)


def test_roi_pool_empty_rois(device):
    x = torch.randn(1, 4, 10, 10, device=device, requires_grad=True)
    out = roi_pool(x, torch.zeros(0, 5, device=device), 7, 0.5)
    assert out.shape == (0, 4, 7, 7)
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_roi_pool_non_contiguous_input(device):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 12, 16, 8, generator=g).to(device).transpose(1, 3)
    rois = make_rois(10, 2, 16, 12, 0.5, g).to(device)
    assert not x.is_contiguous()
    ours = roi_pool(x, rois, 3, 0.5)
    torch.testing.assert_close(ours.cpu(), torchvision.ops.roi_pool(x.contiguous().cpu(), rois.cpu(), 3, 0.5))


def test_roi_pool_gradcheck(device):
    g = torch.Generator().manual_seed(3)
    x = torch.randperm(2 * 7 * 8, generator=g).double().reshape(1, 2, 7, 8).to(device).requires_grad_()
    rois = torch.tensor([[0, 0, 0, 6, 5], [0, 2, 1, 7, 6.6], [0, -2, -2, 3, 3]], dtype=torch.float64).to(device)
    assert torch.autograd.gradcheck(lambda t: roi_pool(t, rois, 2, 1.0), (x,),
                                    nondet_tol=1e-10 if device.type == "cuda" else 0.0)


@pytest.mark.parametrize("bad_index", [2.0, -0.5])
def test_roi_pool_rejects_a_batch_index_outside_the_batch_on_every_device(device, bad_index):
    from atss_core import _C

    x = torch.randn(2, 3, 8, 8, device=device)
    rois = torch.tensor([[bad_index, 1, 1, 5, 5]], device=device)
    with pytest.raises(ValueError, match="ROIPool: rois\\[:, 0\\] \\(batch index\\) must lie in \\[0, 1\\]"):
        roi_pool(x, rois, 2, 1.0)
    argmax = torch.zeros(1, 3, 2, 2, dtype=torch.int32, device=device)
    with pytest.raises(ValueError, match="ROIPool backward: rois\\[:, 0\\] \\(batch index\\)"):
        _C.roi_pool_backward(torch.ones(1, 3, 2, 2, device=device), argmax, rois, 2, 3, 8, 8)


def test_roi_pool_rejects_bad_arguments():
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match="rois must have shape"):
        roi_pool(x, torch.zeros(3, 6), 7, 1.0)
    with pytest.raises(TypeError, match="input must be float32 or float64"):
        roi_pool(x.int(), torch.zeros(3, 5), 7, 1.0)
