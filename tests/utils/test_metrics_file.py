"""metrics.json as JSON lines: appended, one line per iteration and kind, an interrupted last
line dropped; the flat names of a report; SOLVER.BEST_METRIC; the plot of a run."""
import json
import subprocess
import sys

import pytest

from atss_core.engine.validation import BestMetric
from atss_core.utils.metrics_file import MetricsFile, flatten_report, read_metrics

from ..conftest import ROOT


def test_lines_are_appended_once_per_iteration_and_kind(tmp_path):
    path = str(tmp_path / "metrics.json")
    metrics = MetricsFile(path)
    assert metrics.write(20, {"loss": 1.5, "lr": 0.01})
    assert metrics.write(20, {"val/AP": 0.25})  # an evaluation at the same iteration: another kind
    assert not metrics.write(20, {"loss": 9.0})
    resumed = MetricsFile(path)  # a resumed run repeats iteration 20
    assert not resumed.write(20, {"val/AP": 0.5}) and resumed.write(40, {"val/AP": float("nan")})
    records = read_metrics(path)
    assert records == [{"iteration": 20, "loss": 1.5, "lr": 0.01}, {"iteration": 20, "val/AP": 0.25},
                       {"iteration": 40, "val/AP": None}]


def test_an_interrupted_last_line_is_dropped_and_the_file_goes_on(tmp_path, caplog):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"iteration": 1, "loss": 2.0}) + "\n" + '{"iteration": 2, "lo')
    assert read_metrics(str(path)) == [{"iteration": 1, "loss": 2.0}]
    metrics = MetricsFile(str(path))
    assert "removed an incomplete last line" in caplog.text
    metrics.write(2, {"loss": 1.0})
    assert [r["iteration"] for r in read_metrics(str(path))] == [1, 2]
    assert path.read_text().count("\n") == 2


def test_reports_are_flattened_under_the_dataset_name():
    coco = {"bbox": {"AP": 0.3, "AP50": 0.5}, "per_class": {"cat": 0.2}, "timing": {"total": 3.0}}
    assert flatten_report("coco_2017_val", coco) == {"coco_2017_val/AP": 0.3, "coco_2017_val/AP50": 0.5,
                                                     "coco_2017_val/AP-cat": 0.2}
    voc = {"mAP": 0.7, "per_class": {"dog": 0.6}}
    assert flatten_report("voc_2007_test", voc) == {"voc_2007_test/mAP": 0.7, "voc_2007_test/AP-dog": 0.6}


def test_the_best_metric_names_a_figure_of_a_validation_dataset():
    figures = {"coco_2017_val/AP": 0.3, "coco_2017_val/AP50": 0.5, "voc_2007_test/mAP": 0.7}
    assert BestMetric("AP", ["coco_2017_val"]).value_in(figures) == ("coco_2017_val/AP", 0.3)
    assert BestMetric("coco_2017_val/AP50", ["voc_2007_test", "coco_2017_val"]).value_in(figures)[1] == 0.5
    assert BestMetric("AP", ["voc_2007_test"]).value_in(figures) == ("voc_2007_test/mAP", 0.7)  # VOC's AP
    lower = BestMetric("-AP", ["coco_2017_val"])
    assert lower.improves(0.1, {"value": 0.2}) and not lower.improves(0.3, {"value": 0.2})
    higher = BestMetric("AP", ["coco_2017_val"])
    assert higher.improves(0.3, {"value": 0.2}) and not higher.improves(0.2, {"value": 0.2})
    assert higher.improves(0.0, None) and not higher.improves(float("nan"), None)
    with pytest.raises(KeyError, match="has no figure 'coco_2017_val/AP-zebra'"):
        BestMetric("AP-zebra", ["coco_2017_val"]).value_in(figures)
    with pytest.raises(ValueError, match="names no metric of an evaluation report: APxl"):
        BestMetric("APxl", ["coco_2017_val"])
    with pytest.raises(ValueError, match="not evaluated during training"):
        BestMetric("coco_2014_val/AP", ["coco_2017_val"])
    with pytest.raises(ValueError, match="needs a dataset to evaluate on"):
        BestMetric("AP", [])
    # a coco:<dir>:<json> name, as metrics.json spells it
    name = "coco:data/val:data/val.json"
    assert BestMetric("AP", [name]).key == "coco_data_val_data_val.json/AP"


def test_plot_metrics_draws_losses_and_the_validation_metric(tmp_path):
    path = tmp_path / "metrics.json"
    lines = [{"iteration": 20, "loss_cls": 1.0, "loss_reg": 0.5, "lr": 0.01}, {"iteration": 20, "val/AP": 0.1},
             {"iteration": 40, "loss_cls": 0.8, "loss_reg": 0.4, "lr": 0.01}, {"iteration": 40, "val/AP": 0.2}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    result = subprocess.run([sys.executable, "tools/plot_metrics.py", str(path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "metrics: val/AP" in result.stdout
    png = (tmp_path / "metrics.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10000
    other = tmp_path / "other"
    other.mkdir()
    (other / "metrics.json").write_text(path.read_text())
    result = subprocess.run([sys.executable, "tools/plot_metrics.py", str(path), str(other / "metrics.json"),
                             "--output", str(tmp_path / "both.png")], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "2 run(s), 8 records" in result.stdout, result.stderr
    result = subprocess.run([sys.executable, "tools/plot_metrics.py", str(tmp_path / "none.json")], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "metrics file not found" in result.stderr
