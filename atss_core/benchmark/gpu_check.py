"""The steps of tools/gpu_check.py (`make gpu-check`), which proves that atss_core runs on a GPU:

1. builds atss_core._C with its CUDA kernels when the installed build has none (CUDA_HOME
   from the environment or from the nvcc on PATH);
2. runs the CUDA tests (the test variants that skip on machines without a GPU);
3. times the compiled ops against torchvision (tools/benchmark.py --ops --device cuda) and
   the detector (R-50-FPN inference at 800x1333 and a training step, float32 and float16,
   against torchvision's FCOS);
4. trains the quickstart config on the GPU for --iterations iterations in float32 and with
   DTYPE float16, and compares the first iterations' losses with the same run (same SEED,
   same batches) on the CPU;
5. trains with the recipe switches that have a GPU path together (float16 with the loss
   scale taken out before gradient clipping, two accumulated passes per step, EMA, and an
   evaluation every RECIPE_TEST_PERIOD iterations into metrics.json and model_best.pth),
   on augmented, repeat-factor sampled data with crowds as ignore regions;
6. assigns 1,000 objects at 800x1333 (9 anchors per location) for every POSITIVE_TYPE on the
   GPU, the sliced assigners against the CPU, with the GPU's peak memory.
"""
import json
import os
import subprocess
import sys
import time

import torch

from atss_core.benchmark import model as bm
from atss_core.benchmark.ops import run_ops_suite
from atss_core.benchmark.timing import median_seconds

ROOT = bm.ROOT

QUICKSTART_CONFIG = os.path.join(ROOT, "configs", "quickstart", "atss_R_18_synthetic.yaml")
COMPARED_ITERATIONS = 5
# float32 on both devices (TF32 off): only summation order differs; float16 rounds much more
LOSS_RTOL = {"float32": 1e-3, "float16": 3e-2}
REBUILT_FLAG = "ATSS_GPU_CHECK_REBUILT"


class CheckFailed(Exception):
    pass


def require_gpu():
    if not torch.cuda.is_available():
        raise RuntimeError("gpu-check needs a CUDA GPU, and torch.cuda.is_available() is False on this machine "
                         "(torch {}, built for CUDA {}): run it where `nvidia-smi` lists a GPU".format(
                             torch.__version__, torch.version.cuda))


def cuda_home():
    """CUDA_HOME, or the root of the toolkit whose nvcc is on PATH (through a wrapper script)."""
    found = subprocess.run(["/bin/bash", os.path.join(ROOT, "tools", "cuda_home.sh")], capture_output=True, text=True)
    if found.returncode != 0 or not found.stdout.strip():
        raise CheckFailed("no nvcc on PATH, no /usr/local/cuda and CUDA_HOME is not set: install the CUDA toolkit")
    return found.stdout.strip()


def ensure_cuda_extension():
    """Rebuilds atss_core._C with CUDA kernels when needed, then re-runs this script (the
    rebuilt extension cannot be imported into a process that already loaded the old one, so
    the command that is running starts again)."""
    from atss_core import _C

    if _C.built_with_cuda():
        return "installed build has CUDA kernels"
    if os.environ.get(REBUILT_FLAG):
        raise CheckFailed("atss_core._C was rebuilt but still has no CUDA kernels")
    env = dict(os.environ, FORCE_CUDA="1", CUDA_HOME=cuda_home(), MAX_JOBS=os.environ.get("MAX_JOBS", "8"))
    env[REBUILT_FLAG] = "1"
    print("building atss_core._C with CUDA kernels (CUDA_HOME={}) ...".format(env["CUDA_HOME"]), flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-build-isolation", "--no-deps", "-e", ROOT],
                   env=env, check=True)
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def run_cuda_tests():
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda",
                             os.path.join(ROOT, "tests")], cwd=ROOT, capture_output=True, text=True)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-500:]
    print(result.stdout[-4000:], flush=True)
    if result.returncode != 0:
        raise CheckFailed("CUDA tests: " + summary)
    if " passed" not in summary:
        raise CheckFailed("CUDA tests: none ran ({})".format(summary))
    return summary


def run_ops_benchmark(json_path):
    report = run_ops_suite(torch.device("cuda"), warmup=2, repeats=7)
    with open(json_path, "w") as f:
        json.dump(report, f, indent=2)
    results = report["results"]
    worst = max(results, key=lambda r: r["ratio"])
    return "{} cases, ours/torchvision ratio {:.2f}..{:.2f} (worst: {})".format(
        len(results), min(r["ratio"] for r in results), worst["ratio"], worst["case"])


def cuda_seconds(fn, warmup=3, repeats=10):
    return median_seconds(fn, warmup, repeats, device="cuda")


def model_timings(device=torch.device("cuda")):
    """Milliseconds: R-50-FPN inference per image at 800x1333 and one training step (batch 2 at
    800x1216), ours and torchvision FCOS, float32 and float16 autocast."""
    rows = {}
    for amp in (None, torch.float16):
        tag = "fp16" if amp else "fp32"
        autocast = torch.autocast("cuda", dtype=amp, enabled=amp is not None)
        cfg, atss = bm.build_atss()
        atss = atss.to(device).eval()
        fcos = bm.build_torchvision("fcos", 800, 1333).to(device).eval()
        cpu_images = bm.random_images(1, 800, 1333)
        images = [image.to(device) for image in cpu_images]
        batch = bm.atss_inputs(cpu_images, cfg).to(device)

        def infer(model, inputs):
            def fn():
                with torch.inference_mode(), autocast:
                    model(inputs)
            return fn

        rows["inference 800x1333 " + tag] = (cuda_seconds(infer(atss, batch)) * 1e3,
                                             cuda_seconds(infer(fcos, images)) * 1e3)
        cpu_train_images = bm.random_images(2, 800, 1216)
        train_images = [image.to(device) for image in cpu_train_images]
        train_batch = bm.atss_inputs(cpu_train_images, cfg).to(device)
        targets = [t.to(device) for t in bm.atss_targets(cpu_train_images)]
        tv_targets = [{k: v.to(device) for k, v in t.items()} for t in bm.torchvision_targets(cpu_train_images)]

        def step(model, call):
            model.train()
            optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-4, momentum=0.9)
            scaler = torch.amp.GradScaler("cuda", enabled=amp is not None)

            def fn():
                with autocast:
                    losses = call(model)
                optimizer.zero_grad()
                scaler.scale(sum(losses.values())).backward()
                scaler.step(optimizer)
                scaler.update()
            return fn

        rows["training step batch 2 " + tag] = (
            cuda_seconds(step(atss, lambda m: m(train_batch, targets)), repeats=5) * 1e3,
            cuda_seconds(step(fcos, lambda m: m(train_images, tv_targets)), repeats=5) * 1e3)
    return rows


def training_losses(device, dtype, iterations, output_dir, seed=0, extra=()):
    """Trains the quickstart config (synthetic data, generated when missing; ``extra``: more
    KEY VALUE overrides) and returns its per-iteration history."""
    import logging

    from atss_core.config import load_config
    from atss_core.data.synthetic import make_synthetic_dataset
    from atss_core.engine.defaults import train

    data = os.path.join(ROOT, "datasets", "synthetic")
    if not os.path.isfile(os.path.join(data, "annotations", "instances_train.json")):
        make_synthetic_dataset(data)
    cfg = load_config(QUICKSTART_CONFIG, [
        "MODEL.DEVICE", device, "DTYPE", dtype, "SEED", seed, "SOLVER.MAX_ITER", iterations,
        "SOLVER.CHECKPOINT_PERIOD", 0, "OUTPUT_DIR", output_dir,
        "DATASETS.TRAIN", ("coco:{0}/train:{0}/annotations/instances_train.json".format(data),),
        "DATASETS.TEST", ("coco:{0}/val:{0}/annotations/instances_val.json".format(data),)] + list(extra))
    cfg.freeze()
    logger = logging.getLogger("atss_core.gpu_check")
    history = []
    previous = os.getcwd()
    os.chdir(ROOT)
    try:
        train(cfg, 0, False, logger, log_period=100, history=history)
    finally:
        os.chdir(previous)
    return history


LOSS_KEYS = ("loss_cls", "loss_reg", "loss_centerness")


def compare_losses(reference, other, rtol, count=COMPARED_ITERATIONS):
    """The largest relative difference over the first ``count`` iterations' losses, and
    whether it is within ``rtol``."""
    worst = 0.0
    for ref, got in zip(reference[:count], other[:count]):
        for key in LOSS_KEYS:
            worst = max(worst, abs(got[key] - ref[key]) / max(abs(ref[key]), 1e-12))
    return worst, worst <= rtol


def training_check(iterations, output_root):
    torch.backends.cudnn.allow_tf32 = False  # float32 means float32 for the comparison
    torch.backends.cuda.matmul.allow_tf32 = False
    cpu = training_losses("cpu", "float32", COMPARED_ITERATIONS, os.path.join(output_root, "cpu"))
    lines, failed = [], []
    for dtype in ("float32", "float16"):
        gpu = training_losses("cuda", dtype, iterations, os.path.join(output_root, "cuda_" + dtype))
        worst, ok = compare_losses(cpu, gpu, LOSS_RTOL[dtype])
        totals = [sum(h[k] for k in LOSS_KEYS) for h in gpu]
        finite = all(t == t and abs(t) != float("inf") for t in totals)
        start, end = sum(totals[:10]) / 10, sum(totals[-10:]) / 10
        lines.append("{}: first {} iterations within {:.1e} of the CPU run (tolerance {:.0e}); loss {:.3f} -> {:.3f} "
                     "over {} iterations".format(dtype, COMPARED_ITERATIONS, worst, LOSS_RTOL[dtype], start, end,
                                                 len(gpu)))
        if not (ok and finite and end < start):
            failed.append(lines[-1])
    if failed:
        raise CheckFailed("; ".join(failed))
    return "; ".join(lines)


RECIPE_TEST_PERIOD = 20
RECIPE = ("SOLVER.CLIP_GRADIENTS.ENABLED", True, "SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "norm",
          "SOLVER.CLIP_GRADIENTS.CLIP_VALUE", 10.0, "SOLVER.ACCUMULATE_STEPS", 2, "MODEL.EMA.ENABLED", True,
          "MODEL.EMA.WARMUP_ITERS", 20, "SOLVER.TEST_PERIOD", RECIPE_TEST_PERIOD, "TENSORBOARD.ENABLED", False,
          "INPUT.PHOTOMETRIC_DISTORT_PROB", 0.5, "INPUT.ZOOM_OUT_PROB", 0.3, "INPUT.IOU_CROP_PROB", 0.3,
          "DATALOADER.SAMPLER_TRAIN", "RepeatFactorTrainingSampler", "DATALOADER.REPEAT_THRESHOLD", 0.5,
          "DATALOADER.FILTER_EMPTY_ANNOTATIONS", False, "MODEL.ATSS.IGNORE_CROWD", True)


def recipe_check(output_root, device="cuda", dtype="float16", iterations=2 * RECIPE_TEST_PERIOD):
    """The recipe switches together: the run must end with finite losses, an evaluation line in
    metrics.json at every RECIPE_TEST_PERIOD and model_best.pth."""
    from atss_core.utils.metrics_file import read_metrics

    folder = os.path.join(output_root, "recipe_{}_{}".format(device, dtype))
    history = training_losses(device, dtype, iterations, folder, extra=RECIPE)
    totals = [sum(h[k] for k in LOSS_KEYS) for h in history]
    evaluated = [r["iteration"] for r in read_metrics(os.path.join(folder, "metrics.json"))
                 if any("/" in k for k in r)]
    expected = list(range(RECIPE_TEST_PERIOD, iterations + 1, RECIPE_TEST_PERIOD))
    best = os.path.join(folder, "model_best.pth")
    if not (all(t == t and abs(t) != float("inf") for t in totals) and evaluated == expected and os.path.isfile(best)):
        raise CheckFailed("{} {}: losses {:.3f} -> {:.3f}, evaluations at {} (expected {}), model_best.pth {}".format(
            device, dtype, totals[0], totals[-1], evaluated, expected, "written" if os.path.isfile(best) else "missing"))
    return ("{} {}, clipping + 2 passes per step + EMA + evaluation every {} + augmentation, repeat-factor sampling "
            "and ignore regions: loss {:.3f} -> {:.3f}, best {}").format(
        device, dtype, RECIPE_TEST_PERIOD, totals[0], totals[-1], torch.load(best, weights_only=True)["best"])


def dense_assignment_check(device="cuda", num_gt=1000, anchors_per_location=9):
    """Every POSITIVE_TYPE's sliced assignment of ``num_gt`` objects at 800x1333 on ``device``
    against the CPU: the fraction of anchors given the same gt (top-k ties may break
    differently on the GPU) and the device's peak memory."""
    from atss_core.benchmark.dense_assignment import dense_boxes, scene_anchors, sliced_assign

    anchors, counts = scene_anchors(800, 1333, anchors_per_location)
    gt_boxes = dense_boxes(num_gt, 800, 1333)
    lines, failed = [], []
    for positive_type in ("ATSS", "SSC", "IoU", "TOPK"):
        expected = sliced_assign(positive_type, anchors, counts, gt_boxes, per_location=anchors_per_location)
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        start = time.time()
        ours = sliced_assign(positive_type, anchors.to(device), counts, gt_boxes.to(device),
                             per_location=anchors_per_location).cpu()
        seconds = time.time() - start
        peak = torch.cuda.max_memory_allocated() / 2 ** 20 if device.startswith("cuda") else float("nan")
        agreement = float((ours == expected).float().mean())
        lines.append("{} {:.4%} of anchors as on the CPU, {:.2f} s, peak {:.0f} MB".format(positive_type, agreement,
                                                                                        seconds, peak))
        if agreement < 0.999:
            failed.append(lines[-1])
    if failed:
        raise CheckFailed("; ".join(failed))
    return "{} objects, {} anchors: {}".format(num_gt, anchors.shape[0], "; ".join(lines))


def write_json(path, data):
    """Writes ``data`` to ``path`` through a temporary file and os.replace, so that a reader (or a
    run killed mid-write) never sees half a file."""
    tmp = "{}.tmp{}".format(path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.replace(tmp, path)


def run_checks(iterations, json_path, output_dir=None, budget_s=None):
    """Runs every step (see the module docstring), prints a summary table and writes it as
    JSON; returns whether every step passed. The JSON is rewritten before and after each step
    ("running" names the step in progress, "complete" turns true at the end), so a run that is
    cut short still reports the steps it finished. A step that would start after ``budget_s``
    seconds is not run (and counts as failed). Step outputs (ops.json, training runs) go to
    ``output_dir``, by default a gpu_check folder beside the JSON."""
    require_gpu()
    started = time.time()
    output_root = output_dir or os.path.join(os.path.dirname(os.path.abspath(json_path)), "gpu_check")
    os.makedirs(output_root, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(json_path)), exist_ok=True)
    steps = [
        ("CUDA extension", ensure_cuda_extension),
        ("CUDA tests", run_cuda_tests),
        ("ops benchmark (ours / torchvision)", lambda: run_ops_benchmark(os.path.join(output_root, "ops.json"))),
        ("model benchmark", lambda: "; ".join("{}: {:.1f} ms (FCOS {:.1f} ms)".format(name, ours, fcos)
                                              for name, (ours, fcos) in model_timings().items())),
        ("quickstart training, GPU vs CPU", lambda: training_check(iterations, output_root)),
        ("training recipe switches on the GPU", lambda: recipe_check(output_root)),
        ("dense-scene assignment on the GPU", dense_assignment_check),
    ]
    summary = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
               "iterations": iterations, "budget_s": budget_s, "complete": False, "running": None, "steps": []}
    for name, step in steps:
        start = time.time()
        if budget_s is not None and start - started > budget_s:
            detail, ok = "not run: the {} s budget was spent after {:.0f} s".format(budget_s, start - started), False
        else:
            summary["running"] = name
            write_json(json_path, summary)
            try:
                detail, ok = step(), True
            except Exception as error:  # noqa: BLE001 -- every failure goes into the summary
                detail, ok = "{}: {}".format(type(error).__name__, error), False
        summary["running"] = None
        summary["steps"].append({"step": name, "ok": ok, "seconds": round(time.time() - start, 1), "detail": detail})
        write_json(json_path, summary)
        print("[{}] {}: {}".format("ok" if ok else "FAILED", name, detail), flush=True)
    summary["complete"] = True
    write_json(json_path, summary)
    print("\ngpu-check on {} (torch {}, CUDA {})".format(summary["device"], summary["torch"], summary["cuda"]))
    print("| step | result | seconds | detail |\n|---|---|---|---|")
    for s in summary["steps"]:
        print("| {} | {} | {} | {} |".format(s["step"], "ok" if s["ok"] else "FAILED", s["seconds"], s["detail"]))
    return all(s["ok"] for s in summary["steps"])
