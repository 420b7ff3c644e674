#!/usr/bin/env python
"""Times atss_core against torchvision in the same run.

    python tools/benchmark.py --ops [--device cpu|cuda] [--repeats N] [--json FILE]
    python tools/benchmark.py --model [--sizes 800x1216 800x1333] [--json FILE] [--readme]

--ops: every compiled op against its torchvision counterpart. --model: the ATSS R-50-FPN
against torchvision's FCOS and RetinaNet (inference per image, a training step), the
machine's fp32/bf16 limits with our forward's achieved GFLOP/s, and the ATSS assignment
against a per-gt loop (tools/benchmark_model.py). Each case is run a few times to warm up
(excluded), then timed `--repeats` times; the tables show medians and ratios ours / theirs
(< 1 means we are faster).
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from atss_core import layers  # noqa: E402


def median_ms(fn, device, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", action="store_true", help="benchmark the compiled ops")
    parser.add_argument("--model", action="store_true", help="benchmark the detector (CPU)")
    parser.add_argument("--coco-eval", action="store_true",
                        help="pycocotools against faster-coco-eval on a generated detection set")
    parser.add_argument("--coco-eval-images", type=int, default=5000, help="--coco-eval: images (100 detections each)")
    parser.add_argument("--sizes", nargs="*", default=["800x1216"], help="--model: inference sizes HxW")
    parser.add_argument("--train-size", default="800x1216", help="--model: training step size HxW")
    parser.add_argument("--skip-training", action="store_true", help="--model: leave out the training step")
    parser.add_argument("--readme", action="store_true", help="--model: rewrite the README's model-benchmark table")
    parser.add_argument("--evaluation", action="store_true",
                        help="--model: also time test_net.py's evaluation of the shipped raccoon photographs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, help="timed runs per case (default: 7 for --ops, 3 for --model)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--filter", default="", help="only run cases whose name contains this text")
    args = parser.parse_args(argv)
    if not (args.ops or args.model or args.coco_eval):
        parser.error("choose a suite: --ops, --model or --coco-eval")
    if args.coco_eval:
        return coco_eval_main(args)
    if args.model:
        return model_main(args)
    args.repeats = args.repeats or 7
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda requested but no CUDA device is available")

    cases = nms_cases(device) + roi_cases(device) + focal_cases(device) + deform_cases(device)
    results = []
    print("{:<34} {:>12} {:>16} {:>8}".format("case", "ours (ms)", "torchvision (ms)", "ratio"))
    for name, ours, theirs in cases:
        if args.filter not in name:
            continue
        ours_ms = median_ms(ours, device, args.warmup, args.repeats)
        theirs_ms = median_ms(theirs, device, args.warmup, args.repeats)
        ratio = ours_ms / theirs_ms
        results.append(dict(case=name, ours_ms=round(ours_ms, 3), torchvision_ms=round(theirs_ms, 3),
                            ratio=round(ratio, 3)))
        print("{:<34} {:>12.2f} {:>16.2f} {:>8.2f}".format(name, ours_ms, theirs_ms, ratio), flush=True)

    report = dict(
        device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        threads=torch.get_num_threads(), torch=torch.__version__, torchvision=torchvision.__version__,
        repeats=args.repeats, warmup=args.warmup, results=results,
    )
    write_json(args.json, report)
    return report


def write_json(path, data):
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            json.dump(data, f, indent=2)
        print("wrote", path)


def parse_size(text):
    height, width = text.lower().split("x")
    return int(height), int(width)


def coco_eval_main(args):
    import benchmark_coco_eval

    result = benchmark_coco_eval.coco_eval_case(args.coco_eval_images)
    print("{}: pycocotools {:.1f} s, faster-coco-eval {:.1f} s ({:.1f}x faster), the same 12 numbers".format(
        result["case"], result["seconds"]["pycocotools"], result["seconds"]["faster-coco-eval"], result["speedup"]))
    write_json(args.json, result)
    return result


def model_main(args):
    import benchmark_model

    repeats = args.repeats or 3  # the model cases take seconds each
    results = benchmark_model.run_model_suite([parse_size(s) for s in args.sizes], args.warmup, repeats,
                                              parse_size(args.train_size), skip_training=args.skip_training,
                                              evaluation=args.evaluation)
    print(benchmark_model.format_table(results))
    report = dict(suite="model", device="cpu", device_name=platform.processor() or "cpu",
                  threads=torch.get_num_threads(), torch=torch.__version__, torchvision=torchvision.__version__,
                  repeats=repeats, warmup=args.warmup, results=results)
    write_json(args.json, report)
    if args.readme:
        benchmark_model.update_readme(os.path.join(benchmark_model.ROOT, "README.md"), report)
        print("updated the README's model-benchmark table")
    return report


if __name__ == "__main__":
    main()
