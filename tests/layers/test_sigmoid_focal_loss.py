import math

import pytest
import torch
import torch.nn.functional as F
import torchvision

from atss_core.layers import SigmoidFocalLoss, sigmoid_focal_loss


def oracle(logits, targets, gamma, alpha):
    """torchvision's focal loss on one-hot targets (label k -> column k - 1), rows with
    a negative label dropped."""
    keep = targets >= 0
    one_hot = F.one_hot(targets[keep].clamp(min=0), logits.shape[1] + 1)[:, 1:].to(logits.dtype)
    return torchvision.ops.sigmoid_focal_loss(logits[keep], one_hot, alpha, gamma, reduction="none")


def make_case(n, c, dtype, seed=0, scale=4.0):
    g = torch.Generator().manual_seed(seed)
    logits = (torch.randn(n, c, generator=g, dtype=torch.float64) * scale).to(dtype)
    targets = torch.randint(-1, c + 1, (n,), generator=g)
    return logits, targets


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("gamma,alpha", [(2.0, 0.25), (1.5, 0.5), (0.0, 0.75)])
def test_focal_loss_sum_matches_torchvision(device, dtype, gamma, alpha):
    logits, targets = make_case(300, 7, dtype)
    ours_in = logits.clone().to(device).requires_grad_()
    ours = SigmoidFocalLoss(gamma, alpha)(ours_in, targets.to(device))
    ours.backward()
    ref_in = logits.clone().requires_grad_()
    ref = oracle(ref_in, targets, gamma, alpha).sum()
    ref.backward()
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    assert ours.shape == ()
    torch.testing.assert_close(ours.detach().cpu(), ref.detach(), **tol)
    torch.testing.assert_close(ours_in.grad.cpu(), ref_in.grad, **tol)


def test_focal_loss_per_element_matches_torchvision(device):
    logits, targets = make_case(200, 5, torch.float64, seed=1)
    targets = targets.clamp(min=0)
    grad = torch.randn(200, 5, dtype=torch.float64)
    ours_in = logits.clone().to(device).requires_grad_()
    ours = sigmoid_focal_loss(ours_in, targets.to(device), 2.0, 0.25, reduction="none")
    ours.backward(grad.to(device))
    ref_in = logits.clone().requires_grad_()
    ref = oracle(ref_in, targets, 2.0, 0.25)
    ref.backward(grad)
    torch.testing.assert_close(ours.detach().cpu(), ref.detach())
    torch.testing.assert_close(ours_in.grad.cpu(), ref_in.grad)


def test_focal_loss_ignores_negative_labels(device):
    logits, _ = make_case(10, 3, torch.float32)
    logits = logits.to(device).requires_grad_()
    targets = torch.full((10,), -1, dtype=torch.int64, device=device)
    loss = sigmoid_focal_loss(logits, targets, reduction="none")
    assert torch.equal(loss, torch.zeros_like(loss))
    loss.sum().backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_focal_loss_extreme_logits_are_finite(device):
    logits = torch.tensor([[-100.0, 100.0], [100.0, -100.0], [0.0, 50.0]], device=device, requires_grad=True)
    targets = torch.tensor([1, 1, 0], device=device)
    loss = sigmoid_focal_loss(logits, targets)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    # confidently wrong logits cost |logit| times their weight: row 0 col 0 (should be 1)
    # 0.25 * 100, row 0 col 1 and row 2 col 1 (should be 0) 0.75 * 100 and 0.75 * 50; row 2 col 0
    # (logit 0, background) 0.75 * 0.5^2 * ln 2; the confidently right ones cost nothing
    assert loss.item() == pytest.approx(25 + 75 + 37.5 + 0.75 * 0.25 * math.log(2), rel=1e-5)


def test_focal_loss_empty(device):
    logits = torch.zeros(0, 80, device=device, requires_grad=True)
    loss = sigmoid_focal_loss(logits, torch.zeros(0, dtype=torch.int64, device=device))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad.shape == (0, 80)


def test_focal_loss_non_contiguous_logits(device):
    logits, targets = make_case(64, 12, torch.float32, seed=4)
    view = logits.to(device)[:, ::2]
    assert not view.is_contiguous()
    ours = sigmoid_focal_loss(view, targets.clamp(0, 6).to(device), reduction="none")
    torch.testing.assert_close(ours.cpu(), oracle(view.cpu().contiguous(), targets.clamp(0, 6), 2.0, 0.25))


@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_focal_loss_gradcheck(device, reduction):
    logits, targets = make_case(6, 4, torch.float64, seed=5, scale=2.0)
    logits = logits.to(device).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: sigmoid_focal_loss(x, targets.to(device), 2.0, 0.25, reduction=reduction), (logits,)
    )
    assert torch.autograd.gradcheck(
        lambda x: sigmoid_focal_loss(x, targets.to(device), 1.3, 0.4, reduction=reduction), (logits,)
    )


def test_focal_loss_rejects_bad_arguments():
    logits = torch.randn(4, 3)
    with pytest.raises(TypeError, match="targets must be an integer tensor"):
        sigmoid_focal_loss(logits, torch.zeros(4))
    with pytest.raises(ValueError, match="targets has 5 entries but logits has 4 rows"):
        sigmoid_focal_loss(logits, torch.zeros(5, dtype=torch.int64))
    with pytest.raises(ValueError, match="logits must be a 2-D tensor"):
        sigmoid_focal_loss(logits.flatten(), torch.zeros(12, dtype=torch.int64))
    with pytest.raises(ValueError, match="reduction must be"):
        sigmoid_focal_loss(logits, torch.zeros(4, dtype=torch.int64), reduction="mean")


def test_focal_loss_float32_is_accurate_over_the_logit_range(device):
    """The CPU float32 kernel uses polynomial exp/log: compare with torchvision in float64 everywhere."""
    logits = torch.linspace(-40, 40, 4001, dtype=torch.float64).reshape(-1, 1).repeat(1, 3)
    targets = torch.arange(4001) % 4  # background and each of the 3 classes
    ref_in = logits.clone().requires_grad_()
    ref = oracle(ref_in, targets, 2.0, 0.25)
    ref.sum().backward()
    ours_in = logits.float().to(device).requires_grad_()
    ours = sigmoid_focal_loss(ours_in, targets.to(device), reduction="none")
    ours.sum().backward()
    torch.testing.assert_close(ours.double().cpu(), ref.detach().cpu(), rtol=2e-6, atol=1e-7)
    torch.testing.assert_close(ours_in.grad.double().cpu(), ref_in.grad.cpu(), rtol=2e-6, atol=1e-7)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device; the CUDA variant runs where a GPU exists")
@pytest.mark.parametrize("gamma", [2.0, 1.5])
def test_cuda_and_cpu_focal_loss_agree_to_a_few_ulp(gamma):
    """Both kernels specialise gamma == 2 (a square, not pow) and share the element function."""
    logits, targets = make_case(4000, 80, torch.float32, seed=7, scale=6.0)
    cpu = sigmoid_focal_loss(logits, targets, gamma, 0.25, reduction="none")
    gpu = sigmoid_focal_loss(logits.cuda(), targets.cuda(), gamma, 0.25, reduction="none").cpu()
    torch.testing.assert_close(gpu, cpu, rtol=4 * torch.finfo(torch.float32).eps, atol=1e-12)
