import pytest
import torch
import torch.nn.functional as F
import torchvision

from atss_core.layers import (DeformConv, DFConv2d, ModulatedDeformConv, ModulatedDeformConvPack, deform_conv,
                              modulated_deform_conv)

# (in, out, kernel, stride, padding, dilation, groups, deformable_groups)
CONFIGS = [
    (4, 6, 3, 1, 1, 1, 1, 1),
    (6, 4, 3, 2, 1, 1, 2, 3),
    (4, 4, (3, 2), 1, (2, 1), 2, 1, 2),
    (3, 5, 1, 1, 0, 1, 1, 1),
]


def make_case(config, dtype, batch=2, height=9, width=11, seed=0, offset_scale=2.0):
    cin, cout, k, stride, pad, dil, groups, dgroups = config
    kh, kw = torch.nn.modules.utils._pair(k)
    ph, pw = torch.nn.modules.utils._pair(pad)
    oh = (height + 2 * ph - (dil * (kh - 1) + 1)) // stride + 1
    ow = (width + 2 * pw - (dil * (kw - 1) + 1)) // stride + 1
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cin, height, width, generator=g, dtype=dtype)
    weight = torch.randn(cout, cin // groups, kh, kw, generator=g, dtype=dtype)
    bias = torch.randn(cout, generator=g, dtype=dtype)
    # offsets large enough to push samples outside the map
    offset = torch.randn(batch, 2 * dgroups * kh * kw, oh, ow, generator=g, dtype=dtype) * offset_scale
    mask = torch.rand(batch, dgroups * kh * kw, oh, ow, generator=g, dtype=dtype)
    return x, weight, bias, offset, mask, dict(stride=stride, padding=pad, dilation=dil)


def leaves(*tensors, device):
    return [t.clone().to(device).requires_grad_() for t in tensors]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("modulated", [False, True])
def test_deform_conv_matches_torchvision(device, dtype, config, modulated):
    x, weight, bias, offset, mask, geo = make_case(config, dtype)
    groups, dgroups = config[6], config[7]
    ours = leaves(x, weight, bias, offset, mask, device=device)
    ref = leaves(x, weight, bias, offset, mask, device="cpu")
    if modulated:
        out = modulated_deform_conv(ours[0], ours[3], ours[4], ours[1], ours[2], groups=groups,
                                    deformable_groups=dgroups, **geo)
    else:
        out = deform_conv(ours[0], ours[3], ours[1], groups=groups, deformable_groups=dgroups, bias=ours[2], **geo)
    # torchvision infers groups from the weight shape and deformable groups from the offset shape
    expected = torchvision.ops.deform_conv2d(ref[0], ref[3], ref[1], ref[2], mask=ref[4] if modulated else None,
                                             **geo)
    grad = torch.randn_like(expected)
    out.backward(grad.to(device))
    expected.backward(grad)

    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(out.detach().cpu(), expected.detach(), **tol)
    names = ["input", "weight", "bias", "offset", "mask"] if modulated else ["input", "weight", "bias", "offset"]
    for name, a, b in zip(names, ours, ref):
        torch.testing.assert_close(a.grad.cpu(), b.grad, **tol, msg=lambda m: "grad of {}: {}".format(name, m))
    if not modulated:
        assert ours[4].grad is None


@pytest.mark.parametrize("modulated", [False, True])
def test_deform_conv_gradcheck(device, modulated):
    config = (4, 2, 3, 1, 1, 1, 2, 2)
    x, weight, bias, offset, mask, geo = make_case(config, torch.float64, batch=1, height=5, width=4, offset_scale=1.3)
    inputs = leaves(x, weight, bias, offset, mask, device=device)

    def fn(x, weight, bias, offset, mask):
        if modulated:
            return modulated_deform_conv(x, offset, mask, weight, bias, groups=2, deformable_groups=2, **geo)
        return deform_conv(x, offset, weight, groups=2, deformable_groups=2, bias=bias, **geo)

    if not modulated:
        inputs[4].requires_grad_(False)
    # the CUDA backward scatters with atomicAdd: the summation order may differ between runs
    assert torch.autograd.gradcheck(fn, tuple(inputs), atol=1e-6, nondet_tol=1e-10 if device.type == "cuda" else 0.0)


def test_zero_offsets_equal_a_plain_convolution(device):
    x, weight, bias, offset, mask, geo = make_case(CONFIGS[1], torch.float32, seed=3)
    conv = DeformConv(6, 4, 3, stride=2, padding=1, groups=2, deformable_groups=3, bias=True).to(device)
    with torch.no_grad():
        conv.weight.copy_(weight)
        conv.bias.copy_(bias)
    out = conv(x.to(device), torch.zeros_like(offset).to(device))
    torch.testing.assert_close(out.cpu(), F.conv2d(x, weight, bias, stride=2, padding=1, groups=2), rtol=1e-4,
                               atol=1e-4)


def test_modulated_pack_and_dfconv_with_zero_offsets_are_scaled_convolutions(device):
    """Zero offset convs: no offsets and mask sigmoid(0) = 0.5. The reference convolution runs
    on the CPU in float32 (on CUDA, F.conv2d may use TF32)."""
    torch.manual_seed(0)
    x = torch.randn(2, 8, 10, 12)

    def reference(conv_weight, **kwargs):
        return F.conv2d(x, conv_weight.detach().cpu(), **kwargs)

    pack = ModulatedDeformConvPack(8, 6, 3, padding=1, deformable_groups=2).to(device)
    expected = 0.5 * reference(pack.weight, padding=1) + pack.bias.detach().cpu().view(1, -1, 1, 1)
    torch.testing.assert_close(pack(x.to(device)).cpu(), expected, rtol=1e-4, atol=1e-4)

    dcn_v2 = DFConv2d(8, 6, with_modulated_dcn=True, kernel_size=3, bias=True).to(device)
    torch.nn.init.zeros_(dcn_v2.offset.weight)
    expected = 0.5 * reference(dcn_v2.conv.weight, padding=1) + dcn_v2.conv.bias.detach().cpu().view(1, -1, 1, 1)
    torch.testing.assert_close(dcn_v2(x.to(device)).cpu(), expected, rtol=1e-4, atol=1e-4)

    dcn_v1 = DFConv2d(8, 6, with_modulated_dcn=False, kernel_size=3, stride=2, dilation=2).to(device)
    torch.nn.init.zeros_(dcn_v1.offset.weight)
    expected = reference(dcn_v1.conv.weight, stride=2, padding=2, dilation=2)
    torch.testing.assert_close(dcn_v1(x.to(device)).cpu(), expected, rtol=1e-4, atol=1e-4)


def test_dfconv2d_offsets_start_as_officially():
    """kaiming_uniform(a=1): uniform within sqrt(6 / ((1 + 1) * fan_in)) = sqrt(3 / fan_in); bias 0."""
    torch.manual_seed(0)
    offset = DFConv2d(64, 64, with_modulated_dcn=True).offset
    bound = (3.0 / (64 * 9)) ** 0.5
    assert offset.weight.abs().max() <= bound
    assert offset.weight.abs().max() > 0.9 * bound  # spread over the whole range, not zeros
    assert offset.weight.std().item() == pytest.approx(bound / 3 ** 0.5, rel=0.05)
    assert torch.count_nonzero(offset.bias) == 0


def test_dfconv2d_state_dict_names_match_the_official_layout():
    modulated = DFConv2d(256, 256, with_modulated_dcn=True, kernel_size=3, bias=True)
    shapes = {k: tuple(v.shape) for k, v in modulated.state_dict().items()}
    assert shapes == {"offset.weight": (27, 256, 3, 3), "offset.bias": (27,), "conv.weight": (256, 256, 3, 3),
                      "conv.bias": (256,)}
    plain = DFConv2d(64, 64, with_modulated_dcn=False, deformable_groups=2)
    assert {k: tuple(v.shape) for k, v in plain.state_dict().items()} == {
        "offset.weight": (36, 64, 3, 3), "offset.bias": (36,), "conv.weight": (64, 64, 3, 3)}


def test_deform_conv_empty_batch(device):
    conv = ModulatedDeformConv(4, 3, 3, padding=1).to(device)
    x = torch.zeros(0, 4, 6, 6, device=device, requires_grad=True)
    out = conv(x, torch.zeros(0, 18, 6, 6, device=device), torch.zeros(0, 9, 6, 6, device=device))
    assert out.shape == (0, 3, 6, 6)
    out.sum().backward()
    assert x.grad.shape == x.shape
    assert conv.weight.grad is not None and torch.count_nonzero(conv.weight.grad) == 0  # nothing to learn from


def test_deform_conv_rejects_bad_arguments():
    x = torch.randn(1, 4, 6, 6)
    w = torch.randn(3, 4, 3, 3)
    with pytest.raises(ValueError, match="offset must have shape \\[1, 18, 6, 6\\]"):
        deform_conv(x, torch.zeros(1, 9, 6, 6), w, padding=1)
    with pytest.raises(ValueError, match="mask must have shape \\[1, 9, 6, 6\\]"):
        modulated_deform_conv(x, torch.zeros(1, 18, 6, 6), torch.zeros(1, 18, 6, 6), w, padding=1)
    with pytest.raises(TypeError, match="weight must have the dtype of input"):
        deform_conv(x, torch.zeros(1, 18, 6, 6), w.double(), padding=1)
    with pytest.raises(ValueError, match="must be divisible by deformable_groups"):
        deform_conv(x, torch.zeros(1, 54, 6, 6), w, padding=1, deformable_groups=3)
    with pytest.raises(ValueError, match="weight has 4 input channels per group"):
        deform_conv(x, torch.zeros(1, 18, 6, 6), torch.randn(4, 4, 3, 3), padding=1, groups=2)
    with pytest.raises(ValueError, match="divisible by groups"):
        DeformConv(4, 3, 3, groups=2)
