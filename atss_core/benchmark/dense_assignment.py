"""Assignment in dense scenes (tools/benchmark.py --dense): our sliced assigners against a
re-statement of the official computation, which forms the whole [anchors, gts] matrices.

``full_matrix_assign`` follows the official ATSSLossComputation.prepare_targets step by step
(the IoU and distance matrices of every anchor against every gt, the [A, G, 2] and [A, G, 4]
intermediates, the -INF masked IoU matrix and its row maximum). It is the reference our
outputs are checked against (equal bit for bit, tests/modeling/test_dense_assignment.py) and
the baseline the memory table compares with.

Each measured case runs in a fresh process: the peak resident memory of the assignment alone
(Linux's high-water mark, reset after the scene is built), and its median time.
"""
import json
import math
import os
import subprocess
import sys
import time

import torch

from atss_core.modeling.matcher import Matcher
from atss_core.modeling.rpn.atss import assigners
from atss_core.structures.boxlist_ops import box_iou_legacy

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = os.path.join(ROOT, "configs", "atss", "atss_R_50_FPN_1x.yaml")
GT_COUNTS = (10, 100, 1000, 3000)
ANCHORS_PER_LOCATION = (1, 9)
GIB = 1024 ** 3


# ---------------------------------------------------------------- the official computation
def _centres(boxes):
    return torch.stack([(boxes[:, 2] + boxes[:, 0]) / 2.0, (boxes[:, 3] + boxes[:, 1]) / 2.0], dim=1)


def _inside_all(points, gt_boxes):
    """[A, G] whether each point lies inside each gt by more than 0.01 (the [A, G, 4] way)."""
    ltrb = torch.stack([points[:, None, 0] - gt_boxes[None, :, 0], points[:, None, 1] - gt_boxes[None, :, 1],
                        gt_boxes[None, :, 2] - points[:, None, 0], gt_boxes[None, :, 3] - points[:, None, 1]], dim=2)
    return ltrb, ltrb.min(dim=2).values > 0.01


def _best_of_masked(ious, is_pos):
    """The official tail: IoUs of non-positives set to -INF, each anchor's row maximum."""
    masked = torch.where(is_pos, ious, torch.full_like(ious, -assigners.INF))
    values, index = masked.max(dim=1)
    return torch.where(values == -assigners.INF, torch.full_like(index, assigners.BACKGROUND), index)


def _full_atss(anchors, counts, gt_boxes, topk, per_location, plus_one, **_):
    ious = box_iou_legacy(anchors, gt_boxes, plus_one)
    points = _centres(anchors)
    distances = (points[:, None, :] - _centres(gt_boxes)[None, :, :]).pow(2).sum(-1).sqrt()
    candidates, start = [], 0
    for count in counts:
        k = min(topk * per_location, count)
        candidates.append(distances[start:start + count].topk(k, dim=0, largest=False).indices + start)
        start += count
    candidates = torch.cat(candidates, dim=0)
    num_gt, num_anchors = gt_boxes.shape[0], anchors.shape[0]
    gt_range = torch.arange(num_gt)
    candidate_ious = ious[candidates, gt_range]
    is_candidate_pos = candidate_ious >= (candidate_ious.mean(0) + candidate_ious.std(0))[None, :]
    # the anchor centres repeated for every gt ([G * A] each), indexed at the candidates
    flat = (candidates + gt_range[None, :] * num_anchors).view(-1)
    expanded_x = points[:, 0].view(1, -1).expand(num_gt, num_anchors).contiguous().view(-1)
    expanded_y = points[:, 1].view(1, -1).expand(num_gt, num_anchors).contiguous().view(-1)
    cx, cy = expanded_x[flat].view(-1, num_gt), expanded_y[flat].view(-1, num_gt)
    ltrb = torch.stack([cx - gt_boxes[:, 0], cy - gt_boxes[:, 1], gt_boxes[:, 2] - cx, gt_boxes[:, 3] - cy], dim=1)
    is_candidate_pos &= ltrb.min(dim=1).values > 0.01
    is_pos = torch.zeros_like(ious, dtype=torch.bool)
    is_pos[candidates[is_candidate_pos], gt_range.expand_as(candidates)[is_candidate_pos]] = True
    return _best_of_masked(ious, is_pos)


def _full_topk(anchors, counts, gt_boxes, topk, plus_one, **_):
    points = _centres(anchors)
    distances = (points[:, None, :] - _centres(gt_boxes)[None, :, :]).pow(2).sum(-1).sqrt()
    distances = distances / distances.max() / 1000
    ious = box_iou_legacy(anchors, gt_boxes, plus_one)
    is_pos = torch.zeros_like(ious, dtype=torch.bool)
    for g in range(gt_boxes.shape[0]):
        idx = (ious[:, g] - distances[:, g]).topk(min(topk, anchors.shape[0]), dim=0).indices
        _, inside = _inside_all(points[idx], gt_boxes[g:g + 1])
        is_pos[idx[inside[:, 0]], g] = True
    return _best_of_masked(ious, is_pos)


def _full_ssc(anchors, counts, gt_boxes, plus_one, gt_areas=None, **_):
    points = _centres(anchors)
    sizes = torch.cat([points.new_tensor(assigners.SSC_OBJECT_SIZES[level]).expand(count, 2)
                       for level, count in enumerate(counts)], dim=0)
    if gt_areas is None:
        gt_areas = (gt_boxes[:, 2] - gt_boxes[:, 0] + plus_one) * (gt_boxes[:, 3] - gt_boxes[:, 1] + plus_one)
    ltrb, inside = _inside_all(points, gt_boxes)
    largest = ltrb.max(dim=2).values
    in_level = (largest >= sizes[:, [0]]) & (largest <= sizes[:, [1]])
    area = gt_areas[None].repeat(points.shape[0], 1)
    area[~inside] = assigners.INF
    area[~in_level] = assigners.INF
    min_area, index = area.min(dim=1)
    return torch.where(min_area == assigners.INF, torch.full_like(index, assigners.BACKGROUND), index)


def _full_iou(anchors, counts, gt_boxes, plus_one, fg_iou_threshold=0.5, bg_iou_threshold=0.4, **_):
    matches = Matcher(fg_iou_threshold, bg_iou_threshold, True)(box_iou_legacy(gt_boxes, anchors, plus_one))
    gt_index = matches.clone()
    gt_index[matches == Matcher.BETWEEN_THRESHOLDS] = assigners.IGNORE
    gt_index[matches == Matcher.BELOW_LOW_THRESHOLD] = assigners.BACKGROUND
    positive = (gt_index >= 0).nonzero().squeeze(1)
    _, inside = _inside_all(_centres(anchors[positive]), gt_boxes)
    outside = ~inside[torch.arange(positive.numel()), gt_index[positive]]
    gt_index[positive[outside]] = assigners.IGNORE
    return gt_index


FULL_MATRIX = {"ATSS": _full_atss, "TOPK": _full_topk, "SSC": _full_ssc, "IoU": _full_iou}


def full_matrix_assign(positive_type, anchors, counts, gt_boxes, topk=9, per_location=1, plus_one=1, **extra):
    """[A] gt index / BACKGROUND / IGNORE the official way, every [A, G] matrix formed whole."""
    return FULL_MATRIX[positive_type](anchors, counts, gt_boxes, topk=topk, per_location=per_location,
                                      plus_one=plus_one, **extra)


def sliced_assign(positive_type, anchors, counts, gt_boxes, topk=9, per_location=1, plus_one=1,
                  chunk_elements=None, **extra):
    """Ours (atss_core.modeling.rpn.atss.assigners), with its IoU thresholds at the config's defaults."""
    settings = dict(fg_iou_threshold=0.5, bg_iou_threshold=0.4)
    settings.update(extra)
    return assigners.assign(positive_type, anchors=anchors, num_anchors_per_level=counts, gt_boxes=gt_boxes,
                            topk=topk, num_anchors_per_location=per_location, plus_one=plus_one,
                            chunk_elements=chunk_elements, **settings)


# ---------------------------------------------------------------- scenes
def scene_anchors(height, width, anchors_per_location, plus_one=1):
    """(anchors [A, 4], per-level counts) of the R-50 config at an input of height x width:
    1 anchor per location (the official ATSS configs) or 9 (3 scales x 3 aspect ratios)."""
    from atss_core.config import load_config
    from atss_core.modeling.rpn.anchor_generator import make_anchor_generator_atss
    from atss_core.structures import to_image_list

    overrides = ["MODEL.LEGACY_PLUS_ONE", bool(plus_one)]
    if anchors_per_location == 9:
        overrides += ["MODEL.ATSS.ASPECT_RATIOS", (0.5, 1.0, 2.0), "MODEL.ATSS.SCALES_PER_OCTAVE", 3]
    elif anchors_per_location != 1:
        raise ValueError("anchors_per_location must be 1 or 9, got {}".format(anchors_per_location))
    cfg = load_config(CONFIG, overrides)
    images = to_image_list([torch.zeros(3, height, width)], cfg.DATALOADER.SIZE_DIVISIBILITY)
    padded = images.tensors.shape[-2:]
    features = [torch.zeros(1, 1, math.ceil(padded[0] / s), math.ceil(padded[1] / s))
                for s in cfg.MODEL.ATSS.ANCHOR_STRIDES]
    levels = make_anchor_generator_atss(cfg)(images, features)[0]
    return torch.cat([level.bbox for level in levels]), [len(level) for level in levels]


def dense_boxes(count, height, width, seed=0, min_size=8, max_size=64):
    """[count, 4] small objects spread over the image, some overlapping (shelves, crowds)."""
    g = torch.Generator().manual_seed(seed)
    wh = min_size + torch.rand(count, 2, generator=g) * (max_size - min_size)
    xy = torch.rand(count, 2, generator=g) * (torch.tensor([width, height]) - wh)
    return torch.cat([xy, xy + wh], dim=1).floor()


# ---------------------------------------------------------------- measurement
def _reset_peak():
    """Resets this process's resident high-water mark (Linux); False where it cannot."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _proc_bytes(path, field):
    """A memory figure, in bytes, from a /proc file listing "Field: N kB" lines (None when absent)."""
    with open(path) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None


def _status_bytes(field):
    """A memory figure of this process from /proc/self/status ("VmHWM": the peak, "VmRSS": now)."""
    value = _proc_bytes("/proc/self/status", field)
    if value is None:
        raise RuntimeError("no {} in /proc/self/status".format(field))
    return value


def measure_here(method, positive_type, num_gt, anchors_per_location, repeats=3, height=800, width=1333):
    """In this process: the time (median of ``repeats``) and peak memory above the resident
    memory before the call of one assignment. ``method``: "ours", "official" or "loss" (our whole
    training loss on random head outputs, 80 classes)."""
    torch.set_num_threads(int(os.environ.get("ATSS_BENCH_THREADS", torch.get_num_threads())))
    anchors, counts = scene_anchors(height, width, anchors_per_location)
    gt_boxes = dense_boxes(num_gt, height, width)
    run = _case(method, positive_type, anchors, counts, gt_boxes, anchors_per_location, height, width)
    if not _reset_peak():
        raise RuntimeError("cannot reset the peak memory of this process (/proc/self/clear_refs)")
    before = _status_bytes("VmRSS")
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return {"seconds": sorted(seconds)[len(seconds) // 2], "peak_bytes": _status_bytes("VmHWM") - before,
            "anchors": anchors.shape[0]}


def _case(method, positive_type, anchors, counts, gt_boxes, per_location, height, width):
    if method == "ours":
        return lambda: sliced_assign(positive_type, anchors, counts, gt_boxes, per_location=per_location)
    if method == "official":
        return lambda: full_matrix_assign(positive_type, anchors, counts, gt_boxes, per_location=per_location)
    if method == "loss":
        return _loss_case(positive_type, anchors, counts, gt_boxes, per_location, height, width)
    raise ValueError("unknown method {!r}".format(method))


def _loss_case(positive_type, anchors, counts, gt_boxes, per_location, height, width):
    from atss_core.modeling.rpn.atss.atss import BoxCoder
    from atss_core.modeling.rpn.atss.loss import ATSSLossComputation, ATSSLossSettings
    from atss_core.structures import BoxList

    settings = ATSSLossSettings(positive_type=positive_type, num_anchors_per_location=per_location)
    loss = ATSSLossComputation(None, BoxCoder(None), settings=settings)
    g = torch.Generator().manual_seed(0)
    strides = (8, 16, 32, 64, 128)
    shapes = [(math.ceil(math.ceil(height / 32) * 32 / s), math.ceil(math.ceil(width / 32) * 32 / s)) for s in strides]
    box_cls = [torch.randn(1, 80 * per_location, h, w, generator=g) - 4 for h, w in shapes]
    box_regression = [torch.randn(1, 4 * per_location, h, w, generator=g) * 0.1 for h, w in shapes]
    centerness = [torch.randn(1, per_location, h, w, generator=g) for h, w in shapes]
    targets = BoxList(gt_boxes, (width, height))
    targets.add_field("labels", torch.randint(1, 81, (gt_boxes.shape[0],), generator=g))
    levels, start = [], 0
    for count in counts:
        levels.append(BoxList(anchors[start:start + count], (width, height)))
        start += count

    def run():
        with torch.no_grad():
            loss(box_cls, box_regression, centerness, [targets], [levels])
    return run


def measure_in_subprocess(method, positive_type, num_gt, anchors_per_location, repeats=3, timeout=1800):
    """:func:`measure_here` in a fresh interpreter, so that no earlier case's memory counts."""
    code = ("import json, sys; from atss_core.benchmark.dense_assignment import measure_here; "
            "print(json.dumps(measure_here(*json.loads(sys.argv[1]))))")
    args = json.dumps([method, positive_type, num_gt, anchors_per_location, repeats])
    out = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True, timeout=timeout,
                         cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError("dense assignment case {} {} G={} x{} failed:\n{}".format(
            method, positive_type, num_gt, anchors_per_location, out.stderr[-2000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def available_bytes():
    return _proc_bytes("/proc/meminfo", "MemAvailable") or 0


def _fit_line(points):
    """(slope, intercept) of the least-squares line through (x, y) points."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return slope, my - slope * mx


def dense_assignment_rows(positive_types=("ATSS",), gt_counts=GT_COUNTS, per_location=ANCHORS_PER_LOCATION,
                          repeats=3, memory_limit=24 * GIB, log=print):
    """Every (positive type, anchors per location, G) case for ours and the official computation,
    each in its own process; an official case whose memory, extrapolated linearly from the
    smaller G, would not fit into the available memory is not run but estimated. Ends with our
    whole loss at the largest G. Each row: its fields and the G at which each method stops
    fitting into ``memory_limit``."""
    rows = []
    budget = available_bytes() * 0.8
    for positive_type in positive_types:
        for apl in per_location:
            measured = {"ours": [], "official": []}
            for num_gt in gt_counts:
                row = {"positive_type": positive_type, "anchors_per_location": apl, "num_gt": num_gt}
                for method in ("ours", "official"):
                    history = measured[method]
                    if len(history) >= 2:
                        slope, intercept = _fit_line(history)
                        predicted = slope * num_gt + intercept
                        if predicted > budget:
                            row[method] = {"estimated_peak_bytes": predicted, "not_run": "over {:.1f} GB free".format(
                                budget / GIB)}
                            continue
                    result = measure_in_subprocess(method, positive_type, num_gt, apl, repeats)
                    history.append((num_gt, result["peak_bytes"]))
                    row[method] = result
                    row["anchors"] = result["anchors"]
                log(format_row(row))
                rows.append(row)
            for method in ("ours", "official"):
                slope, intercept = _fit_line(measured[method])
                fits = (memory_limit - intercept) / slope if slope > 0 else math.inf
                rows[-1].setdefault("fits_up_to", {})[method] = fits
    largest = max(gt_counts)
    for apl in per_location:
        row = {"positive_type": "ATSS", "anchors_per_location": apl, "num_gt": largest,
               "loss": measure_in_subprocess("loss", "ATSS", largest, apl, repeats)}
        row["anchors"] = row["loss"]["anchors"]
        log(format_row(row))
        rows.append(row)
    return rows


def _cell(result):
    if result is None:
        return "-"
    if "not_run" in result:
        return "~{:.1f} GB (est., not run)".format(result["estimated_peak_bytes"] / GIB)
    return "{:.3f} s, {}".format(result["seconds"], _size(result["peak_bytes"]))


def _size(num_bytes):
    if num_bytes >= GIB:
        return "{:.2f} GB".format(num_bytes / GIB)
    return "{:.0f} MB".format(max(num_bytes, 0) / 1024 ** 2)


def format_row(row):
    if "loss" in row:
        return "{} x{} G={}: whole loss {}".format(row["positive_type"], row["anchors_per_location"], row["num_gt"],
                                                  _cell(row["loss"]))
    return "{} x{} G={}: ours {}; official {}".format(row["positive_type"], row["anchors_per_location"],
                                                      row["num_gt"], _cell(row.get("ours")),
                                                      _cell(row.get("official")))


def render_markdown(rows):
    """The README table: time and peak memory per case, and where each stops fitting."""
    lines = ["| assigner | anchors / location (A) | G | ours: time, peak | official-style: time, peak |",
             "|---|---|---|---|---|"]
    fits = []
    for row in rows:
        label = "{} (A = {:,})".format(row["anchors_per_location"], row.get("anchors", 0))
        if "loss" in row:
            lines.append("| whole ATSS loss, ours | {} | {:,} | {} | |".format(label, row["num_gt"],
                                                                              _cell(row["loss"])))
            continue
        lines.append("| {} | {} | {:,} | {} | {} |".format(row["positive_type"], label, row["num_gt"],
                                                           _cell(row.get("ours")), _cell(row.get("official"))))
        if "fits_up_to" in row:
            fits.append("{} with {} anchor(s) per location: ours {}, official-style {} "
                        "objects".format(row["positive_type"], row["anchors_per_location"],
                                         _count(row["fits_up_to"]["ours"], row["num_gt"]),
                                         _count(row["fits_up_to"]["official"], row["num_gt"])))
    return "\n".join(lines) + "\n\nWhere each stops fitting into 24 GB (linear fit of the measured peaks):\n\n" + \
        "\n".join("- " + f for f in fits) + "\n"


def _count(value, measured_up_to):
    if math.isinf(value) or value > 100 * measured_up_to:
        return "far beyond {:,} (no growth measured up to there)".format(measured_up_to)
    return "up to about {:,.0f}".format(value)


README_BEGIN = "<!-- dense-assignment table: tools/benchmark.py --dense --readme -->"
README_END = "<!-- end of the dense-assignment table -->"


def update_readme(readme_path, table):
    from atss_core.benchmark.model import replace_marked_section

    replace_marked_section(readme_path, README_BEGIN, README_END, table, "dense-assignment")
