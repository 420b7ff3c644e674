"""The ops suite of tools/benchmark.py (--ops): every compiled op of atss_core._C against its
torchvision counterpart on the same inputs, medians of repeated runs after a warm-up."""
import platform

import torch
import torchvision

from atss_core import layers
from atss_core.benchmark.timing import median_seconds


def clustered_boxes(n, device, seed=0):
    """Boxes in clusters (like detector outputs) so that NMS really suppresses."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.rand(max(n // 20, 1), 2, generator=g) * 1000
    pick = torch.randint(0, centers.shape[0], (n,), generator=g)
    ctr = centers[pick] + torch.randn(n, 2, generator=g) * 8
    wh = 30 + torch.rand(n, 2, generator=g) * 100
    boxes = torch.cat([ctr - wh / 2, ctr + wh / 2], dim=1)
    return boxes.to(device), torch.rand(n, generator=g).to(device)


def nms_cases(device):
    cases = []
    for n in (1000, 5000, 20000):
        boxes, scores = clustered_boxes(n, device)
        shifted = boxes.clone()
        shifted[:, 2:] += 1  # same suppression as the legacy +1 convention
        cases.append(("nms {}".format(n), lambda b=boxes, s=scores: layers.nms(b, s, 0.5),
                      lambda b=shifted, s=scores: torchvision.ops.nms(b, s, 0.5)))
    boxes, scores = clustered_boxes(5000, device, seed=1)
    labels = torch.randint(1, 81, (5000,), generator=torch.Generator().manual_seed(2)).to(device)
    shifted = boxes.clone()
    shifted[:, 2:] += 1
    cases.append(("ml_nms 5000, 80 labels", lambda: layers.ml_nms(boxes, scores, labels, 0.5),
                  lambda: torchvision.ops.batched_nms(shifted, scores, labels, 0.5)))
    return cases


def roi_cases(device):
    g = torch.Generator().manual_seed(0)
    feature = torch.randn(1, 256, 100, 152, generator=g).to(device)
    xy = torch.rand(512, 2, generator=g) * torch.tensor([1216.0, 800.0])
    wh = 16 + torch.rand(512, 2, generator=g) * 300
    rois = torch.cat([torch.zeros(512, 1), xy, xy + wh], dim=1).to(device)
    scale = 1.0 / 8
    feature_grad = feature.clone().requires_grad_()

    def fwd_bwd(op):
        def run():
            feature_grad.grad = None
            op(feature_grad).sum().backward()
        return run

    ours_align = lambda f: layers.roi_align(f, rois, (7, 7), scale, 2)  # noqa: E731
    tv_align = lambda f: torchvision.ops.roi_align(f, rois, (7, 7), scale, 2, aligned=False)  # noqa: E731
    ours_pool = lambda f: layers.roi_pool(f, rois, (7, 7), scale)  # noqa: E731
    tv_pool = lambda f: torchvision.ops.roi_pool(f, rois, (7, 7), scale)  # noqa: E731
    with_grad = torch.no_grad
    return [
        ("roi_align 512x7x7 fwd", lambda: with_grad()(ours_align)(feature), lambda: with_grad()(tv_align)(feature)),
        ("roi_align 512x7x7 fwd+bwd", fwd_bwd(ours_align), fwd_bwd(tv_align)),
        ("roi_pool 512x7x7 fwd", lambda: with_grad()(ours_pool)(feature), lambda: with_grad()(tv_pool)(feature)),
        ("roi_pool 512x7x7 fwd+bwd", fwd_bwd(ours_pool), fwd_bwd(tv_pool)),
    ]


def focal_cases(device):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(100000, 80, generator=g).to(device).requires_grad_()
    targets = torch.randint(0, 81, (100000,), generator=g).to(device)
    one_hot = torch.nn.functional.one_hot(targets, 81)[:, 1:].float()

    def ours():
        logits.grad = None
        layers.sigmoid_focal_loss(logits, targets, 2.0, 0.25).backward()

    def theirs():
        logits.grad = None
        torchvision.ops.sigmoid_focal_loss(logits, one_hot, 0.25, 2.0, reduction="sum").backward()

    return [("focal loss 100000x80 fwd+bwd", ours, theirs)]


def deform_cases(device):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 256, 64, 64, generator=g).to(device).requires_grad_()
    weight = (torch.randn(256, 256, 3, 3, generator=g) * 0.02).to(device).requires_grad_()
    bias = torch.zeros(256).to(device).requires_grad_()
    offset = torch.randn(1, 18, 64, 64, generator=g).to(device).requires_grad_()
    mask = torch.rand(1, 9, 64, 64, generator=g).to(device).requires_grad_()
    params = (x, weight, bias, offset, mask)

    def ours_fwd():
        return layers.modulated_deform_conv(x, offset, mask, weight, bias, padding=1)

    def theirs_fwd():
        return torchvision.ops.deform_conv2d(x, offset, weight, bias, padding=(1, 1), mask=mask)

    def fwd_bwd(fn):
        def run():
            for p in params:
                p.grad = None
            fn().sum().backward()
        return run

    return [
        ("mdcn 3x3 256->256 64x64 fwd", lambda: torch.no_grad()(ours_fwd)(), lambda: torch.no_grad()(theirs_fwd)()),
        ("mdcn 3x3 256->256 64x64 fwd+bwd", fwd_bwd(ours_fwd), fwd_bwd(theirs_fwd)),
    ]


def run_ops_suite(device, warmup, repeats, name_filter=""):
    """Times every case (or those whose name contains ``name_filter``); prints a table as it
    goes and returns the report (device, versions and per-case medians and ratios)."""
    cases = nms_cases(device) + roi_cases(device) + focal_cases(device) + deform_cases(device)
    results = []
    print("{:<34} {:>12} {:>16} {:>8}".format("case", "ours (ms)", "torchvision (ms)", "ratio"))
    for name, ours, theirs in cases:
        if name_filter not in name:
            continue
        ours_ms = median_seconds(ours, warmup, repeats, device) * 1000.0
        theirs_ms = median_seconds(theirs, warmup, repeats, device) * 1000.0
        ratio = ours_ms / theirs_ms
        results.append(dict(case=name, ours_ms=round(ours_ms, 3), torchvision_ms=round(theirs_ms, 3),
                            ratio=round(ratio, 3)))
        print("{:<34} {:>12.2f} {:>16.2f} {:>8.2f}".format(name, ours_ms, theirs_ms, ratio), flush=True)
    return dict(
        device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        threads=torch.get_num_threads(), torch=torch.__version__, torchvision=torchvision.__version__,
        repeats=repeats, warmup=warmup, results=results,
    )
