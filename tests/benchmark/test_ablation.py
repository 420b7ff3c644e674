"""tools/ablation.py: the grid, the statistics, dry runs, failures, and a tiny grid end to end (CPU)."""
import json
import os
import subprocess
import sys

import pytest

from atss_core.benchmark import ablation
from atss_core.utils.cli import CommandError
from tests.tools.test_train_test_net import ROOT, TINY_MODEL, make_dataset


def test_grid_skips_point_regression_with_nine_anchors():
    cells, notes = ablation.expand_grid(["atss", "IoU"], ["BOX", "POINT"], [1, 9])
    assert [c.name for c in cells] == ["ATSS_BOX_A1", "ATSS_BOX_A9", "ATSS_POINT_A1",
                                       "IoU_BOX_A1", "IoU_BOX_A9", "IoU_POINT_A1"]
    assert notes == ["skipping {}_POINT_A9: POINT regression needs 1 anchor per location".format(p)
                     for p in ("ATSS", "IoU")]
    nine = dict(zip(cells[1].overrides[::2], cells[1].overrides[1::2]))
    assert nine == {"MODEL.ATSS.POSITIVE_TYPE": "ATSS", "MODEL.ATSS.REGRESSION_TYPE": "BOX",
                    "MODEL.ATSS.SCALES_PER_OCTAVE": "3", "MODEL.ATSS.ASPECT_RATIOS": "(0.5, 1.0, 2.0)"}
    assert "MODEL.ATSS.SCALES_PER_OCTAVE" not in cells[0].overrides
    with pytest.raises(ValueError, match="unknown positive type"):
        ablation.expand_grid(["FCOS"], ["BOX"])
    with pytest.raises(ValueError, match="1 or 9"):
        ablation.expand_grid(["ATSS"], ["BOX"], [3])


def test_summary_statistics_and_table():
    summary = ablation.summarize([0.30, 0.32, 0.34])
    assert summary["n"] == 3 and summary["mean"] == pytest.approx(0.32)
    assert summary["std"] == pytest.approx(0.02)  # sample std (n - 1), not 0.0163 (n)
    assert ablation.format_stat(summary) == "32.0 ± 2.0"
    single = ablation.summarize([0.25])
    assert single["std"] is None and ablation.format_stat(single) == "25.0 ± —"
    assert ablation.format_stat(ablation.summarize([])) == "—"
    cells, _ = ablation.expand_grid(["ATSS", "TOPK"], ["BOX"])
    summaries = {c.name: {m: summary for m in ablation.METRICS} for c in cells}
    table = ablation.markdown_table(cells, summaries, paper=True).splitlines()
    assert table[0] == "| cell | n | AP | AP50 | AP75 | paper AP (COCO) |"
    assert table[2] == "| ATSS_BOX_A1 | 3 | 32.0 ± 2.0 | 32.0 ± 2.0 | 32.0 ± 2.0 | 39.3 |"
    assert table[3].endswith("| see paper |")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    base = tmp_path_factory.mktemp("ablation")
    dataset = make_dataset(base / "data")
    config = base / "tiny.yaml"
    config.write_text(TINY_MODEL)
    opts = ["DATASETS.TRAIN", "('{}',)".format(dataset), "DATASETS.TEST", "('{}',)".format(dataset),
            "SOLVER.MAX_ITER", "2", "MODEL.ATSS.INFERENCE_TH", "0.0", "TENSORBOARD.ENABLED", "False"]
    return base, str(config), opts


def ablate(config, output, *args, opts=()):
    command = [sys.executable, os.path.join(ROOT, "tools", "ablation.py"), "--config-file", config,
               "--output", str(output), *args, *opts]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_dry_run_prints_train_net_commands_with_the_launcher(tiny):
    base, config, opts = tiny
    result = ablate(config, base / "dry", "--positive-types", "ATSS", "--regression-types", "BOX", "POINT",
                    "--anchors", "1", "9", "--seeds", "0", "1", "--dry-run",
                    "--launcher", "torchrun --nproc_per_node 8", opts=opts)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "skipping ATSS_POINT_A9: POINT regression needs 1 anchor per location" in lines
    commands = [l for l in lines if "train_net.py" in l]
    assert len(commands) == 6  # (BOX_A1, BOX_A9, POINT_A1) x 2 seeds
    assert all(l.startswith("torchrun --nproc_per_node 8 {} --config-file".format(
        os.path.join(ROOT, "tools", "train_net.py"))) for l in commands)
    assert "SEED 1" in commands[1] and commands[1].endswith("OUTPUT_DIR {}".format(
        base / "dry" / "ATSS_BOX_A1" / "seed_1"))
    assert not (base / "dry").exists()  # nothing ran, nothing written


def test_failed_runs_are_named_with_their_log_and_the_reports_still_written(tiny, capsys):
    base, config, opts = tiny
    output = base / "failing"
    # "false" as the launcher: every run exits 1 at once
    with pytest.raises(CommandError, match="2 of 2 runs failed: ATSS_BOX_A1/seed_0, ATSS_BOX_A1/seed_1"):
        ablation.run_ablation(config, str(output), ["ATSS"], ["BOX"], seeds=[0, 1], opts=opts, launcher="false")
    out = capsys.readouterr().out
    assert "run ATSS_BOX_A1/seed_0 failed (exit status 1)" in out and "$ false " in out  # the log's tail
    report = json.loads((output / "ablation.json").read_text())
    assert report["cells"][0]["AP"]["n"] == 0 and set(report["failed"]) == {"ATSS_BOX_A1/seed_0",
                                                                            "ATSS_BOX_A1/seed_1"}
    with pytest.raises(ValueError, match="set by the ablation grid"):
        ablation.run_ablation(config, str(output), opts=["SEED", "3"])


def test_tiny_grid_end_to_end_and_resumed(tiny):
    base, config, opts = tiny
    output = base / "grid"
    grid = ["--positive-types", "ATSS", "SSC", "--regression-types", "BOX", "--seeds", "0", "1", "--jobs", "2"]
    result = ablate(config, output, *grid, "--paper", opts=opts)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((output / "ablation.json").read_text())
    assert [c["cell"] for c in report["cells"]] == ["ATSS_BOX_A1", "SSC_BOX_A1"]
    assert [c["AP"]["n"] for c in report["cells"]] == [2, 2] and len(report["runs"]) == 4
    for run in report["runs"]:
        assert set(run) >= {"AP", "AP50", "AP75"} and 0.0 <= run["AP"] <= 1.0
    table = (output / "ablation.md").read_text()
    assert "| ATSS_BOX_A1 | 2 |" in table and "| SSC_BOX_A1 | 2 |" in table and "see paper" in table
    assert (output / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    log = output / "SSC_BOX_A1" / "seed_1" / "ablation_run.log"
    assert "SEED 1" in log.read_text() and "MODEL.ATSS.POSITIVE_TYPE SSC" in log.read_text()
    mtime = log.stat().st_mtime_ns
    # again: every run is finished, nothing is trained and the reports are rewritten
    result = ablate(config, output, *grid, opts=opts)
    assert result.returncode == 0, result.stderr
    assert "4 finished runs skipped" in result.stdout and "starting" not in result.stdout
    assert log.stat().st_mtime_ns == mtime
    assert json.loads((output / "ablation.json").read_text())["runs"] == report["runs"]
