"""The model suite of tools/benchmark.py (--model): atss_core's ATSS R-50-FPN against torchvision's
FCOS and RetinaNet R-50-FPN, and against the machine's own limits, in one run.

Every case runs on the same random inputs and threads, the models interleaved (one repeat
of each in turn, so that drifts in the machine's speed hit all of them), warm-up excluded,
median of the repeats. Weights are random (weights=None everywhere), as only speed is measured.
"""
import math
import os
import time

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

from atss_core.benchmark.timing import interleaved_medians

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
ATSS_CONFIG = os.path.join(ROOT, "configs", "atss", "atss_R_50_FPN_1x.yaml")


# ---------------------------------------------------------------- models
def build_atss(overrides=()):
    from atss_core.config import load_config
    from atss_core.modeling.detector import build_detection_model

    cfg = load_config(ATSS_CONFIG, ["MODEL.WEIGHT", "", "MODEL.DEVICE", "cpu"] + list(overrides))
    torch.manual_seed(0)
    return cfg, build_detection_model(cfg)


def build_torchvision(name, height, width):
    """torchvision's detector, its internal resize set to keep a height x width input as it is."""
    torch.manual_seed(0)
    builder = {"fcos": torchvision.models.detection.fcos_resnet50_fpn,
               "retinanet": torchvision.models.detection.retinanet_resnet50_fpn}[name]
    return builder(weights=None, weights_backbone=None, min_size=min(height, width), max_size=max(height, width))


def random_images(count, height, width, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, height, width, generator=g) for _ in range(count)]


def random_boxes(count, height, width, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(count, 2, generator=g) * torch.tensor([width * 0.8, height * 0.8])
    wh = 16 + torch.rand(count, 2, generator=g) * torch.tensor([width * 0.3, height * 0.3])
    boxes = torch.cat([xy, (xy + wh).min(torch.tensor([width - 1.0, height - 1.0]))], dim=1)
    labels = torch.randint(1, 81, (count,), generator=g)
    return boxes, labels


def atss_inputs(images, cfg):
    """0..1 RGB tensors -> the ImageList our model takes (BGR 0..255, mean subtracted, padded)."""
    from atss_core.structures import to_image_list

    mean = torch.tensor(cfg.INPUT.PIXEL_MEAN).view(3, 1, 1)
    return to_image_list([img[[2, 1, 0]] * 255 - mean for img in images], cfg.DATALOADER.SIZE_DIVISIBILITY)


def atss_targets(images, boxes_per_image=8):
    from atss_core.structures import BoxList

    targets = []
    for i, img in enumerate(images):
        boxes, labels = random_boxes(boxes_per_image, img.shape[1], img.shape[2], seed=i)
        target = BoxList(boxes, (img.shape[2], img.shape[1]))
        target.add_field("labels", labels)
        targets.append(target)
    return targets


def torchvision_targets(images, boxes_per_image=8):
    return [dict(zip(("boxes", "labels"), random_boxes(boxes_per_image, img.shape[1], img.shape[2], seed=i)))
            for i, img in enumerate(images)]


# ---------------------------------------------------------------- suites
def inference_case(height, width, warmup, repeats):
    """Ours as built (atss_core), after optimize_for_inference (TEST.OPTIMIZE_FOR_INFERENCE,
    what test_net.py and the predictor run), and that under bfloat16 autocast (DTYPE
    bfloat16, where the CPU has it), against torchvision's FCOS and RetinaNet."""
    from atss_core.engine.precision import cpu_has_bf16
    from atss_core.modeling.fusion import optimize_for_inference

    cfg, atss = build_atss()
    atss.eval()
    _, optimized = build_atss()
    optimize_for_inference(optimized)
    fcos = build_torchvision("fcos", height, width).eval()
    retina = build_torchvision("retinanet", height, width).eval()
    images = random_images(1, height, width)
    batch = atss_inputs(images, cfg)

    def run(model, inputs, bf16=False):
        def fn():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                model(inputs)
        return fn

    fns = {"atss_core": run(atss, batch), "atss_core_optimized": run(optimized, batch)}
    if cpu_has_bf16():
        fns["atss_core_optimized_bf16"] = run(optimized, batch, bf16=True)
    fns.update({"torchvision_fcos": run(fcos, images), "torchvision_retinanet": run(retina, images)})
    seconds = interleaved_medians(fns, warmup, repeats)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        atss(batch)
    flops = counter.get_total_flops()
    return {"case": "inference {}x{}".format(height, width), "seconds": seconds, "atss_gflop": flops / 1e9,
            "atss_gflops_per_s": flops / 1e9 / seconds["atss_core"],
            "optimized_gflops_per_s": flops / 1e9 / seconds["atss_core_optimized"]}


def training_case(height, width, warmup, repeats, batch_size=2):
    """One SGD step (forward, backward, update) of each model; ours also under DTYPE bfloat16
    with channels_last where the CPU has bfloat16 arithmetic."""
    from atss_core.engine.precision import autocast_context, cpu_has_bf16

    cfg, atss = build_atss()
    fcos, retina = build_torchvision("fcos", height, width), build_torchvision("retinanet", height, width)
    images = random_images(batch_size, height, width)
    batch, targets = atss_inputs(images, cfg), atss_targets(images)
    tv_targets = torchvision_targets(images)

    def step(model, call, amp=None):
        model.train()
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)

        def fn():
            with autocast_context(amp):
                losses = call(model)
            optimizer.zero_grad()
            sum(losses.values()).backward()
            optimizer.step()
        return fn

    fns = {"atss_core": step(atss, lambda m: m(batch, targets))}
    if cpu_has_bf16():
        _, reduced = build_atss()
        reduced.to(memory_format=torch.channels_last)
        reduced.input_memory_format = torch.channels_last
        fns["atss_core_bf16"] = step(reduced, lambda m: m(batch, targets), amp=("cpu", torch.bfloat16))
    fns.update({"torchvision_fcos": step(fcos, lambda m: m(images, tv_targets)),
                "torchvision_retinanet": step(retina, lambda m: m(images, tv_targets))})
    seconds = interleaved_medians(fns, warmup, repeats)
    return {"case": "training step, batch {} at {}x{}".format(batch_size, height, width), "seconds": seconds}


def limits_case(warmup, repeats):
    """The machine's limit: the best of a large matmul and a large 3x3 conv, fp32 and bf16."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    x, w = torch.randn(1, 256, 200, 304), torch.randn(256, 256, 3, 3)
    x_cl = x.contiguous(memory_format=torch.channels_last)
    matmul_flop = 2 * 2048 ** 3
    conv_flop = 2 * 256 * 256 * 9 * 200 * 304
    fns = {}
    for dtype in (torch.float32, torch.bfloat16):
        name = str(dtype).replace("torch.", "")
        fns["matmul_" + name] = (lambda a=a.to(dtype), b=b.to(dtype): torch.mm(a, b), matmul_flop)
        fns["conv_" + name] = (lambda x=x_cl.to(dtype), w=w.to(dtype): torch.nn.functional.conv2d(x, w, padding=1),
                               conv_flop)

    def timed(fn):
        def run():
            with torch.inference_mode():
                fn()
        return run

    seconds = interleaved_medians({k: timed(fn) for k, (fn, _) in fns.items()}, warmup, repeats)
    gflops = {k: fns[k][1] / 1e9 / s for k, s in seconds.items()}
    return {"case": "machine limits", "gflops_per_s": gflops,
            "fp32_limit": max(gflops["matmul_float32"], gflops["conv_float32"]),
            "bf16_limit": max(gflops["matmul_bfloat16"], gflops["conv_bfloat16"])}


def assignment_case(warmup, repeats, reference, num_gt=100):
    """ATSS assignment at 800x1333 against ``reference(anchors, counts, gt_boxes, topk)`` (a plain
    per-gt loop, tools/benchmark.py: plain_assign_atss); identical outputs asserted."""
    from atss_core.modeling.rpn.atss.assigners import assign_atss
    from atss_core.structures import to_image_list

    cfg, atss = build_atss()
    images = to_image_list([torch.zeros(3, 800, 1333)], 32)
    features = [torch.zeros(1, 1, math.ceil(images.tensors.shape[-2] / s), math.ceil(images.tensors.shape[-1] / s))
                for s in cfg.MODEL.ATSS.ANCHOR_STRIDES]
    levels = atss.rpn.anchor_generator(images, features)[0]
    anchors = torch.cat([level.bbox for level in levels])
    counts = [len(level) for level in levels]
    gt_boxes, _ = random_boxes(num_gt, 800, 1333)
    topk = cfg.MODEL.ATSS.TOPK

    def vectorised():
        return assign_atss(anchors=anchors, num_anchors_per_level=counts, gt_boxes=gt_boxes, topk=topk)

    looped = reference(anchors, counts, gt_boxes, topk)
    if not torch.equal(vectorised(), looped):
        raise AssertionError("vectorised ATSS assignment differs from the per-gt loop")
    seconds = interleaved_medians({"atss_core": vectorised,
                                   "plain_loop": lambda: reference(anchors, counts, gt_boxes, topk)},
                                  warmup, repeats)
    return {"case": "ATSS assignment, {} gts, {} anchors".format(num_gt, anchors.shape[0]), "seconds": seconds}


def _detection_set(boxlist):
    rows = torch.cat([boxlist.get_field("labels")[:, None].float(), boxlist.get_field("scores")[:, None],
                      boxlist.bbox], dim=1)
    return rows[torch.argsort(rows[:, 1] * 1000 + rows[:, 0], descending=True)]


def postprocessing_case(warmup, repeats, reference):
    """ATSSPostProcessor on synthetic head outputs of an 800x1333 image (many candidates),
    against ``reference(post, box_cls, box_regression, centerness, anchors)`` (a plain loop,
    tools/benchmark.py: plain_postprocess); identical detections asserted."""
    from atss_core.structures import to_image_list

    cfg, atss = build_atss()
    post = atss.rpn.box_selector_test
    images = to_image_list([torch.zeros(3, 800, 1333)], 32)
    g = torch.Generator().manual_seed(0)
    shapes = [(math.ceil(images.tensors.shape[-2] / s), math.ceil(images.tensors.shape[-1] / s))
              for s in cfg.MODEL.ATSS.ANCHOR_STRIDES]
    box_cls = [torch.randn(1, 80, h, w, generator=g) * 1.5 - 3.5 for h, w in shapes]
    box_regression = [torch.randn(1, 4, h, w, generator=g) for h, w in shapes]
    centerness = [torch.randn(1, 1, h, w, generator=g) for h, w in shapes]
    anchors = atss.rpn.anchor_generator(images, [torch.zeros(1, 1, h, w) for h, w in shapes])
    ours = post(box_cls, box_regression, centerness, anchors)[0]
    looped = reference(post, box_cls, box_regression, centerness, anchors)
    if not torch.equal(_detection_set(ours), _detection_set(looped)):
        raise AssertionError("ATSSPostProcessor differs from the plain loop")
    seconds = interleaved_medians(
        {"atss_core": lambda: post(box_cls, box_regression, centerness, anchors),
         "plain_loop": lambda: reference(post, box_cls, box_regression, centerness, anchors)},
        warmup, repeats)
    return {"case": "post-processing, 80 classes, 800x1333", "seconds": seconds}


def evaluation_case():
    """test_net.py's evaluation of the shipped raccoon validation photographs (COCO metrics) with
    our optimized R-50 (random weights), split into data loading, model and COCO evaluation.
    INFERENCE_TH 0 lets random weights give the 100 detections per image a trained model gives."""
    import logging

    from atss_core.data.build import make_data_loader
    from atss_core.engine.inference import inference
    from atss_core.modeling.fusion import optimize_for_inference

    cfg, model = build_atss(["DATASETS.TEST", ("raccoon_val",), "TEST.IMS_PER_BATCH", 1,
                             "DATALOADER.NUM_WORKERS", 0, "MODEL.ATSS.NUM_CLASSES", 2,
                             "MODEL.ATSS.INFERENCE_TH", 0.0])
    optimize_for_inference(model)
    loader = make_data_loader(cfg, is_train=False)[0]
    quiet = logging.getLogger("atss_core.benchmark.eval")
    quiet.setLevel(logging.WARNING)
    report = inference(model, loader, "raccoon_val", device=torch.device("cpu"), logger=quiet)
    timing = report["timing"]
    total = timing["total_inference"] + timing["evaluation"]
    return {"case": "test_net.py on raccoon_val ({} photos, 800 px)".format(timing["images"]),
            "evaluation": timing, "images_per_second": timing["images"] / total}


def onnx_case(height, width, warmup, repeats, variants=("fp16", "int8")):
    """onnxruntime (CPU) running the exported graph (export/onnx.py) against the eager model as
    test_net.py runs it (optimized), same input; the agreement of their detections is checked.
    ``variants``: also the float16 graph (export/precision.py) and the int8 one
    (export/quantize.py, calibrated on 4 random images; with random weights its agreement says
    little, its speed is the point), timed in the same interleaved run."""
    import tempfile

    import onnxruntime

    from atss_core.export import onnx as export_onnx
    from atss_core.modeling.fusion import optimize_for_inference

    # INFERENCE_TH 0: random weights then give the full set of detections a trained model gives
    cfg, atss = build_atss(["MODEL.ATSS.INFERENCE_TH", 0.0])
    atss.eval()
    images = atss_inputs(random_images(1, height, width), cfg).tensors
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "atss.onnx")
        start = time.perf_counter()
        export_onnx.export(atss, cfg, path, height, width)
        export_seconds = time.perf_counter() - start
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        sessions = {"onnxruntime_" + name: onnxruntime.InferenceSession(
            _reduced_precision(name, path, images), options, providers=["CPUExecutionProvider"]) for name in variants}
    eager_result = export_onnx.eager_detections(atss, images)[0]
    fraction, eager_count, onnx_count = export_onnx.agreement(eager_result,
                                                              export_onnx.onnx_detections(session, images)[0])
    variant_matched = {key: export_onnx.agreement(eager_result, export_onnx.onnx_detections(other, images)[0],
                                                  *_VARIANT_TOLERANCE[key])[0] for key, other in sessions.items()}
    optimize_for_inference(atss)
    feed = {"images": images.numpy()}

    def eager():
        with torch.inference_mode():
            export_onnx.eager_detections(atss, images)

    timed = {"atss_core_optimized": eager, "onnxruntime": lambda: session.run(None, feed)}
    timed.update({key: (lambda other=other: other.run(None, feed)) for key, other in sessions.items()})
    seconds = interleaved_medians(timed, warmup, repeats)
    return {"case": "onnxruntime vs eager {}x{}".format(height, width), "seconds": seconds,
            "onnx": {"export_seconds": export_seconds, "matched": fraction, "eager_detections": eager_count,
                     "onnx_detections": onnx_count, "variants_matched": variant_matched}}


# (score tolerance, minimum IoU) of each variant's agreement with the eager float32 model
_VARIANT_TOLERANCE = {"onnxruntime_fp16": (1e-2, 0.9), "onnxruntime_int8": (5e-2, 0.8)}


def _reduced_precision(name, path, images):
    """The float16 or int8 version of the ONNX file ``path`` (written beside it)."""
    from atss_core.export.precision import convert_to_fp16
    from atss_core.export.quantize import ArrayCalibrationReader, quantize_int8

    destination = path.replace(".onnx", "_{}.onnx".format(name))
    if name == "fp16":
        convert_to_fp16(path, destination)
    elif name == "int8":
        g = torch.Generator().manual_seed(1)
        samples = [(images + torch.randn(images.shape, generator=g) * 20).numpy() for _ in range(4)]
        quantize_int8(path, destination, ArrayCalibrationReader(samples))
    else:
        raise ValueError("unknown ONNX variant {!r}: fp16 or int8".format(name))
    return destination


def _variant_notes(result):
    """"; float16 X s (r x float32 onnxruntime, m% matched), int8 ..." for the variants timed."""
    seconds, matched = result["seconds"], result["onnx"].get("variants_matched", {})
    parts = ["{} {:.2f} s = {:.2f}x float32 onnxruntime, {:.0%} matched".format(
        key.replace("onnxruntime_", ""), seconds[key], seconds[key] / seconds["onnxruntime"], matched[key])
        for key in sorted(matched)]
    return "; " + "; ".join(parts) if parts else ""


def quickstart_training_case(iterations=60, skip=5):
    """The quickstart's training (configs/quickstart/atss_R_18_synthetic.yaml, its data loader
    and worker) for ``iterations`` iterations on a temporary copy of the synthetic data: data
    time (waiting for the next batch) against step time, the first ``skip`` iterations
    (worker start-up) excluded."""
    import logging
    import tempfile

    from atss_core.config import load_config
    from atss_core.data.synthetic import make_synthetic_dataset
    from atss_core.engine.defaults import train

    with tempfile.TemporaryDirectory() as tmp:
        make_synthetic_dataset(os.path.join(tmp, "synthetic"), num_train=64, num_val=1)
        data = os.path.join(tmp, "synthetic")
        cfg = load_config(os.path.join(ROOT, "configs", "quickstart", "atss_R_18_synthetic.yaml"), [
            "DATASETS.TRAIN", ("coco:{0}/train:{0}/annotations/instances_train.json".format(data),),
            "SOLVER.MAX_ITER", iterations, "SOLVER.CHECKPOINT_PERIOD", 0, "OUTPUT_DIR", os.path.join(tmp, "out")],
            freeze=True)
        quiet = logging.getLogger("atss_core.benchmark.quickstart")
        quiet.setLevel(logging.WARNING)
        history = []
        train(cfg, 0, False, quiet, log_period=10 ** 9, history=history)
    steady = history[skip:]
    step = sum(h["time"] for h in steady) / len(steady)
    data_wait = sum(h["data"] for h in steady) / len(steady)
    return {"case": "quickstart training ({} images of 128 px per step)".format(cfg.SOLVER.IMS_PER_BATCH),
            "quickstart": {"step_seconds": step, "data_seconds": data_wait, "data_fraction": data_wait / step,
                           "iterations": len(steady)}}


def run_model_suite(sizes, warmup, repeats, train_size, references, skip_training=False, evaluation=False):
    """``references``: {"assignment": ..., "postprocessing": ...}, the plain loops the vectorised
    code is checked and timed against (tools/benchmark.py holds them)."""
    results = [limits_case(warmup, repeats)]
    for height, width in sizes:
        results.append(inference_case(height, width, warmup, repeats))
    if not skip_training:
        results.append(training_case(train_size[0], train_size[1], 1, max(repeats // 2, 1)))
    results.append(assignment_case(warmup, repeats, references["assignment"]))
    results.append(postprocessing_case(warmup, repeats, references["postprocessing"]))
    results.append(onnx_case(sizes[0][0], sizes[0][1], warmup, repeats))
    if evaluation:
        results.append(evaluation_case())
        results.append(quickstart_training_case())
    fp32_limit = results[0]["fp32_limit"]
    for r in results:
        if "atss_gflops_per_s" in r:
            r["fraction_of_fp32_limit"] = r["atss_gflops_per_s"] / fp32_limit
            r["optimized_fraction_of_fp32_limit"] = r["optimized_gflops_per_s"] / fp32_limit
        if "seconds" in r and "torchvision_fcos" in r["seconds"]:
            fcos = r["seconds"]["torchvision_fcos"]
            r["ratios_vs_fcos"] = {k: v / fcos for k, v in r["seconds"].items() if k.startswith("atss_core")}
            r["ratio_vs_fcos"] = r["ratios_vs_fcos"]["atss_core"]
        if "seconds" in r and "plain_loop" in r["seconds"]:
            r["speedup_vs_loop"] = r["seconds"]["plain_loop"] / r["seconds"]["atss_core"]
    return results


def format_table(results):
    lines = []
    for r in results:
        if "evaluation" in r:
            t = r["evaluation"]
            lines.append("{:<42} {:.2f} images/s: data {:.1f} s, model {:.1f} s, COCO evaluation {:.1f} s".format(
                r["case"], r["images_per_second"], t["data"], t["model"], t["evaluation"]))
            continue
        if "onnx" in r:
            o, sec = r["onnx"], r["seconds"]
            lines.append("{:<42} eager (optimized) {:.2f} s, onnxruntime {:.2f} s ({:.2f}x); {:.0%} of {} detections "
                         "matched; export {:.0f} s{}".format(r["case"], sec["atss_core_optimized"], sec["onnxruntime"],
                                                            sec["onnxruntime"] / sec["atss_core_optimized"],
                                                            o["matched"], o["eager_detections"], o["export_seconds"],
                                                            _variant_notes(r)))
            continue
        if "quickstart" in r:
            q = r["quickstart"]
            lines.append("{:<42} step {:.3f} s, waiting for data {:.4f} s ({:.1%} of the step)".format(
                r["case"], q["step_seconds"], q["data_seconds"], q["data_fraction"]))
            continue
        if r["case"] == "machine limits":
            g = r["gflops_per_s"]
            lines.append("machine limits (GFLOP/s): fp32 matmul {:.0f}, conv {:.0f}; bf16 matmul {:.0f}, conv {:.0f}"
                         .format(g["matmul_float32"], g["conv_float32"], g["matmul_bfloat16"], g["conv_bfloat16"]))
            continue
        parts = ["{}: {:.3f} s".format(name, s) for name, s in r["seconds"].items()]
        line = "{:<42} {}".format(r["case"], "  ".join(parts))
        if "ratios_vs_fcos" in r:
            line += "  | / FCOS: " + ", ".join("{} {:.2f}".format(k, v) for k, v in r["ratios_vs_fcos"].items())
        if "atss_gflops_per_s" in r:
            line += "  | {:.0f} GFLOP; fp32 {:.0%} (optimized {:.0%}) of the fp32 limit".format(
                r["atss_gflop"], r["fraction_of_fp32_limit"], r["optimized_fraction_of_fp32_limit"])
        if "speedup_vs_loop" in r:
            line += "  | {:.1f}x the loop".format(r["speedup_vs_loop"])
        lines.append(line)
    return "\n".join(lines)


README_BEGIN = "<!-- model benchmark: generated by tools/benchmark.py --model --readme; do not edit -->"
README_END = "<!-- end of model benchmark -->"


def render_markdown(report):
    """The README's model-benchmark table from a --model JSON report."""
    lines = ["Measured by `python tools/benchmark.py --model --readme` ({} threads, torch {}, torchvision {}, "
             "median of {} interleaved repeats, random weights). \"optimized\" is what `test_net.py` and the "
             "predictor run (`TEST.OPTIMIZE_FOR_INFERENCE`: frozen norms folded into the convolutions, "
             "channels_last); \"bf16\" adds `DTYPE bfloat16` (CPU autocast; in the training step with "
             "channels_last, no folding):".format(
                 report["threads"], report["torch"], report["torchvision"], report["repeats"]),
             "", "| case | atss_core | optimized | optimized bf16 | torchvision FCOS | torchvision RetinaNet | "
                 "ours / FCOS (plain, optimized, bf16) | notes |",
             "|---|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        if "evaluation" in r:
            t = r["evaluation"]
            lines.append("| {} | {:.2f} images/s | | | | | | data loading {:.1f} s, model {:.1f} s, COCO "
                         "evaluation {:.1f} s |".format(r["case"], r["images_per_second"], t["data"], t["model"],
                                                         t["evaluation"]))
            continue
        if "onnx" in r:
            o, sec = r["onnx"], r["seconds"]
            lines.append("| {} | | {:.2f} s | | | | | onnxruntime {:.2f} s = {:.2f}x the optimized eager model; {:.0%} "
                         "of its {} detections matched (label, score within 1e-3, IoU >= 0.99){} |".format(
                             r["case"], sec["atss_core_optimized"], sec["onnxruntime"],
                             sec["onnxruntime"] / sec["atss_core_optimized"], o["matched"], o["eager_detections"],
                             _variant_notes(r)))
            continue
        if "quickstart" in r:
            q = r["quickstart"]
            lines.append("| {} | {:.3f} s per step | | | | | | waiting for data {:.4f} s = {:.1%} of the step "
                         "(mean of {} iterations) |".format(r["case"], q["step_seconds"], q["data_seconds"],
                                                           q["data_fraction"], q["iterations"]))
            continue
        if r["case"] == "machine limits":
            g = r["gflops_per_s"]
            limits = ("machine limits: fp32 {:.0f} GFLOP/s (matmul {:.0f}, 3x3 conv {:.0f}), bf16 {:.0f} GFLOP/s "
                      "(matmul {:.0f}, conv {:.0f})".format(r["fp32_limit"], g["matmul_float32"], g["conv_float32"],
                                                           r["bf16_limit"], g["matmul_bfloat16"], g["conv_bfloat16"]))
            continue
        s = r["seconds"]
        if "plain_loop" in s:
            lines.append("| {} | {:.3f} s | | | | | | {:.1f}x faster than a plain loop (same output) |".format(
                r["case"], s["atss_core"], r["speedup_vs_loop"]))
            continue

        def cell(key):
            return "{:.2f} s".format(s[key]) if key in s else "—"

        notes = ""
        if "atss_gflop" in r:
            notes = "{:.0f} GFLOP; {:.0f} / {:.0f} GFLOP/s = {:.0%} / {:.0%} of the fp32 limit (plain / optimized)".format(
                r["atss_gflop"], r["atss_gflops_per_s"], r["optimized_gflops_per_s"], r["fraction_of_fp32_limit"],
                r["optimized_fraction_of_fp32_limit"])
        ratios = ", ".join("{:.2f}".format(v) for v in r["ratios_vs_fcos"].values())
        lines.append("| {} | {} | {} | {} | {} | {} | {} | {} |".format(
            r["case"], cell("atss_core"), cell("atss_core_optimized"),
            cell("atss_core_optimized_bf16") if "atss_core_optimized_bf16" in s else cell("atss_core_bf16"),
            cell("torchvision_fcos"), cell("torchvision_retinanet"), ratios, notes))
    lines += ["", limits]
    return "\n".join(lines)


def update_readme(readme_path, report):
    replace_marked_section(readme_path, README_BEGIN, README_END, render_markdown(report) + "\n", "model-benchmark")


def replace_marked_section(readme_path, begin, end, body, what):
    """Rewrites the README's text between the ``begin`` and ``end`` marker lines with ``body``."""
    with open(readme_path) as f:
        text = f.read()
    if begin not in text or end not in text:
        raise ValueError("{} has no {} markers".format(readme_path, what))
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(readme_path, "w") as f:
        f.write(head + begin + "\n" + body + end + tail)
