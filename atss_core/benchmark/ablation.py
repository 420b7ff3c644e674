"""The ATSS paper's assignment ablation as a grid of ordinary tools/train_net.py runs:
MODEL.ATSS.POSITIVE_TYPE x MODEL.ATSS.REGRESSION_TYPE x anchors per location x seeds, then
a table (ablation.md), the numbers (ablation.json) and a bar chart (ablation.png)."""
import json
import os
import shlex
import statistics
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from atss_core.config.paths_catalog import dataset_folder_name
from atss_core.utils.cli import CommandError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRAIN_SCRIPT = os.path.join(ROOT, "tools", "train_net.py")

POSITIVE_TYPES = ("ATSS", "SSC", "IoU", "TOPK")
REGRESSION_TYPES = ("BOX", "POINT")
ANCHOR_CHOICES = (1, 9)
METRICS = ("AP", "AP50", "AP75")
LOG_NAME = "ablation_run.log"
# 9 anchors per location: RetinaNet's 3 scales x 3 aspect ratios (1 keeps the config's)
NINE_ANCHORS = ["MODEL.ATSS.SCALES_PER_OCTAVE", "3", "MODEL.ATSS.ASPECT_RATIOS", "(0.5, 1.0, 2.0)"]
# keys the grid itself sets: an override of one of them would silently collapse the grid
RESERVED_KEYS = ("MODEL.ATSS.POSITIVE_TYPE", "MODEL.ATSS.REGRESSION_TYPE", "SEED", "OUTPUT_DIR")

# COCO minival AP (%) of R-50 1x runs, only where a citable source gives the number; any
# other cell prints "see paper". (positive type, regression type, anchors) -> (AP, source)
PAPER_AP = {
    ("ATSS", "BOX", 1): (39.3, "github.com/sfzhang15/ATSS README, ATSS R-50 1x"),
}
SEE_PAPER = "see paper"
DASH = "—"


@dataclass(frozen=True)
class Cell:
    positive_type: str
    regression_type: str
    anchors: int

    @property
    def name(self):
        return "{}_{}_A{}".format(self.positive_type, self.regression_type, self.anchors)

    @property
    def overrides(self):
        opts = ["MODEL.ATSS.POSITIVE_TYPE", self.positive_type, "MODEL.ATSS.REGRESSION_TYPE", self.regression_type]
        return opts + (NINE_ANCHORS if self.anchors == 9 else [])


@dataclass
class Run:
    cell: Cell
    seed: int
    output_dir: str
    command: list = field(default_factory=list)

    @property
    def name(self):
        return "{}/seed_{}".format(self.cell.name, self.seed)

    @property
    def log_path(self):
        return os.path.join(self.output_dir, LOG_NAME)


def _canonical(value, choices, what):
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise ValueError("unknown {} {!r}: choose from {}".format(what, value, ", ".join(choices)))


def expand_grid(positive_types=POSITIVE_TYPES, regression_types=REGRESSION_TYPES, anchors=(1,)):
    """The grid's cells in order, and a note for each combination left out (POINT regression
    has one point per location, so it cannot tile 9 anchors)."""
    cells, notes = [], []
    for anchor_count in anchors:
        if int(anchor_count) not in ANCHOR_CHOICES:
            raise ValueError("anchors per location are 1 or 9, got {}".format(anchor_count))
    for positive in positive_types:
        positive = _canonical(positive, POSITIVE_TYPES, "positive type")
        for regression in regression_types:
            regression = _canonical(regression, REGRESSION_TYPES, "regression type")
            for anchor_count in anchors:
                cell = Cell(positive, regression, int(anchor_count))
                if regression == "POINT" and cell.anchors == 9:
                    notes.append("skipping {}: POINT regression needs 1 anchor per location".format(cell.name))
                elif cell not in cells:
                    cells.append(cell)
    return cells, notes


def check_overrides(opts):
    if len(opts) % 2:
        raise ValueError("config overrides come in KEY VALUE pairs, got {} words".format(len(opts)))
    for key in opts[::2]:
        if key in RESERVED_KEYS:
            raise ValueError("{} is set by the ablation grid (use the options of tools/ablation.py)".format(key))


def train_command(config_file, cell, seed, output_dir, opts=(), launcher=None):
    """The tools/train_net.py command of one run (the launcher's words replace the interpreter)."""
    head = shlex.split(launcher) if launcher else [sys.executable]
    return head + [TRAIN_SCRIPT, "--config-file", config_file, *cell.overrides, "SEED", str(seed), *opts,
                   "OUTPUT_DIR", output_dir]


def plan_runs(config_file, output, cells, seeds, opts=(), launcher=None):
    runs = []
    for cell in cells:
        for seed in seeds:
            output_dir = os.path.join(os.path.abspath(output), cell.name, "seed_{}".format(seed))
            runs.append(Run(cell, int(seed), output_dir,
                            train_command(os.path.abspath(config_file), cell, seed, output_dir, opts, launcher)))
    return runs


def test_dataset(config_file, opts=()):
    """The first DATASETS.TEST entry of the base config with the overrides: the one reported."""
    from atss_core.config import load_config

    if not os.path.isfile(config_file):
        raise FileNotFoundError("config file {} does not exist".format(config_file))
    cfg = load_config(config_file, opts)
    if not cfg.DATASETS.TEST:
        raise ValueError("DATASETS.TEST is empty: the ablation has nothing to report")
    return cfg.DATASETS.TEST[0]


def metrics_path(output_dir, dataset_name):
    # where atss_core.engine.defaults.inference_folder puts them
    return os.path.join(output_dir, "inference", dataset_folder_name(dataset_name),
                        "coco_metrics.json")


def read_metrics(path):
    with open(path) as f:
        bbox = json.load(f)["bbox"]
    return {name: float(bbox[name]) for name in METRICS}


def log_tail(path, lines=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).rstrip()
    except OSError:
        return "(no log at {})".format(path)


def execute(run, env=None):
    """Runs one training run, its stdout and stderr to its log; returns the exit status."""
    os.makedirs(run.output_dir, exist_ok=True)
    with open(run.log_path, "w") as log:
        log.write("$ {}\n".format(shlex.join(run.command)))
        log.flush()
        return subprocess.call(run.command, stdout=log, stderr=subprocess.STDOUT, env=env)


def summarize(values):
    """{"n", "mean", "std", "values"}: std is the sample standard deviation (None below 2 values)."""
    values = [float(v) for v in values]
    return {"n": len(values), "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else None, "values": values}


def format_stat(summary, scale=100.0):
    if summary["mean"] is None:
        return DASH
    mean = "{:.1f}".format(summary["mean"] * scale)
    return mean + " ± " + ("{:.1f}".format(summary["std"] * scale) if summary["std"] is not None else DASH)


def paper_ap(cell):
    entry = PAPER_AP.get((cell.positive_type, cell.regression_type, cell.anchors))
    return "{:.1f}".format(entry[0]) if entry else SEE_PAPER


def markdown_table(cells, summaries, paper=False):
    header = ["cell", "n", "AP", "AP50", "AP75"] + (["paper AP (COCO)"] if paper else [])
    rows = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for cell in cells:
        stats = summaries[cell.name]
        row = [cell.name, str(stats["AP"]["n"])] + [format_stat(stats[m]) for m in METRICS]
        rows.append("| " + " | ".join(row + ([paper_ap(cell)] if paper else [])) + " |")
    return "\n".join(rows)


def plot(cells, summaries, path):
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(cells) + 1), 4))
    positions = list(range(len(cells)))
    means = [(summaries[c.name]["AP"]["mean"] or 0.0) * 100 for c in cells]
    stds = [(summaries[c.name]["AP"]["std"] or 0.0) * 100 for c in cells]
    ax.bar(positions, means, yerr=stds, capsize=4, color="#8fb3d9", ecolor="dimgray", label="mean AP ± std")
    for x, cell in zip(positions, cells):
        values = [v * 100 for v in summaries[cell.name]["AP"]["values"]]
        ax.plot([x] * len(values), values, "o", color="black", markersize=4,
                label="seeds" if x == 0 and values else None)
    ax.set_xticks(positions)
    ax.set_xticklabels([c.name for c in cells], rotation=30, ha="right")
    ax.set_ylabel("AP (%)")
    ax.set_title("ATSS assignment ablation")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run_ablation(config_file, output, positive_types=POSITIVE_TYPES, regression_types=REGRESSION_TYPES,
                 anchors=(1,), seeds=(0,), opts=(), launcher=None, jobs=1, dry_run=False, paper=False,
                 printer=print):
    """Runs the grid (skipping finished runs), collects and writes the reports; raises a
    CommandError naming the failed runs after writing what it could collect."""
    opts = list(opts or [])
    check_overrides(opts)
    if jobs < 1:
        raise ValueError("--jobs must be at least 1, got {}".format(jobs))
    cells, notes = expand_grid(positive_types, regression_types, anchors)
    for note in notes:
        printer(note)
    if not cells:
        raise ValueError("the grid is empty")
    dataset = test_dataset(config_file, opts)
    runs = plan_runs(config_file, output, cells, seeds, opts, launcher)
    finished = [r for r in runs if os.path.exists(metrics_path(r.output_dir, dataset))]
    pending = [r for r in runs if r not in finished]
    if finished:
        printer("{} finished run{} skipped".format(len(finished), "" if len(finished) == 1 else "s"))
    if dry_run:
        for run in pending:
            printer(shlex.join(run.command))
        return None

    failures = {}
    lock = threading.Lock()

    def work(run):
        with lock:
            printer("starting {}".format(run.name))
        status = execute(run)
        with lock:
            if status != 0:
                failures[run.name] = "exit status {}".format(status)
            elif not os.path.exists(metrics_path(run.output_dir, dataset)):
                failures[run.name] = "finished without {}".format(metrics_path(run.output_dir, dataset))
            printer("{} {}".format(run.name, "failed" if run.name in failures else "done"))

    if pending:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(work, pending))

    records, summaries = [], {}
    for cell in cells:
        values = {m: [] for m in METRICS}
        for run in (r for r in runs if r.cell == cell):
            path = metrics_path(run.output_dir, dataset)
            if run.name in failures or not os.path.exists(path):
                continue
            numbers = read_metrics(path)
            records.append({"cell": cell.name, "seed": run.seed, "output_dir": run.output_dir, **numbers})
            for m in METRICS:
                values[m].append(numbers[m])
        summaries[cell.name] = {m: summarize(values[m]) for m in METRICS}

    os.makedirs(output, exist_ok=True)
    table = markdown_table(cells, summaries, paper)
    with open(os.path.join(output, "ablation.md"), "w") as f:
        f.write("# ATSS assignment ablation\n\nconfig: {}; evaluated on {}; AP in %, mean ± sample std over "
                "seeds\n\n{}\n".format(config_file, dataset, table))
    report = {
        "config_file": os.path.abspath(config_file), "dataset": dataset, "seeds": [int(s) for s in seeds],
        "overrides": opts, "metric_scale": "fractions of 1, as in coco_metrics.json",
        "runs": records,
        "cells": [{"cell": c.name, "positive_type": c.positive_type, "regression_type": c.regression_type,
                   "anchors": c.anchors, **summaries[c.name],
                   "paper_AP": PAPER_AP.get((c.positive_type, c.regression_type, c.anchors), (None,))[0]}
                  for c in cells],
        "skipped_cells": notes, "failed": failures,
    }
    with open(os.path.join(output, "ablation.json"), "w") as f:
        json.dump(report, f, indent=2)
    plot(cells, summaries, os.path.join(output, "ablation.png"))
    printer(table)
    if paper:
        for key, (value, source) in PAPER_AP.items():
            printer("paper AP {}: {} ({})".format(Cell(*key).name, value, source))
    printer("wrote {}".format(", ".join(os.path.join(output, n) for n in ("ablation.md", "ablation.json",
                                                                         "ablation.png"))))
    if failures:
        for name, why in failures.items():
            run = next(r for r in runs if r.name == name)
            printer("run {} failed ({}); the end of {}:\n{}".format(name, why, run.log_path, log_tail(run.log_path)))
        raise CommandError("{} of {} runs failed: {}".format(len(failures), len(runs), ", ".join(failures)))
    return report
