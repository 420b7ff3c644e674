"""The model benchmark's own logic: the assignment case checks its loop reference, and the
README table is generated from a report."""
import importlib.util
import os

import pytest

from atss_core.benchmark import model as benchmark_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def benchmark_script():
    """tools/benchmark.py, which holds the plain references."""
    spec = importlib.util.spec_from_file_location("benchmark_script", os.path.join(ROOT, "tools", "benchmark.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_assignment_case_agrees_with_the_per_gt_loop():
    reference = benchmark_script().plain_assign_atss
    result = benchmark_model.assignment_case(warmup=0, repeats=1, reference=reference, num_gt=20)
    assert set(result["seconds"]) == {"atss_core", "plain_loop"}  # the case asserts identical outputs


def test_postprocessing_case_agrees_with_the_plain_loop():
    result = benchmark_model.postprocessing_case(warmup=0, repeats=1, reference=benchmark_script().plain_postprocess)
    assert result["seconds"]["plain_loop"] > 0  # the case asserts identical detections


def test_quickstart_case_splits_step_time_into_data_wait():
    result = benchmark_model.quickstart_training_case(iterations=6, skip=2)
    q = result["quickstart"]
    assert q["iterations"] == 4
    assert 0 <= q["data_seconds"] < q["step_seconds"]
    assert q["data_fraction"] == pytest.approx(q["data_seconds"] / q["step_seconds"])


def test_onnx_case_times_onnxruntime_and_checks_its_agreement():
    result = benchmark_model.onnx_case(256, 320, warmup=0, repeats=1)
    assert set(result["seconds"]) == {"atss_core_optimized", "onnxruntime", "onnxruntime_fp16", "onnxruntime_int8"}
    assert result["onnx"]["variants_matched"]["onnxruntime_fp16"] >= 0.9
    assert 0 <= result["onnx"]["variants_matched"]["onnxruntime_int8"] <= 1
    assert result["onnx"]["eager_detections"] == 100 and result["onnx"]["matched"] >= 0.95


def test_readme_table_is_rewritten_between_its_markers(tmp_path):
    report = {"threads": 2, "torch": "t", "torchvision": "v", "repeats": 3, "results": [
        {"case": "machine limits", "fp32_limit": 380.0, "bf16_limit": 846.0,
         "gflops_per_s": {"matmul_float32": 217.0, "conv_float32": 380.0, "matmul_bfloat16": 500.0,
                          "conv_bfloat16": 846.0}},
        {"case": "inference 800x1216", "seconds": {"atss_core": 1.5, "atss_core_optimized": 1.2,
                                                   "torchvision_fcos": 2.0, "torchvision_retinanet": 2.5},
         "ratios_vs_fcos": {"atss_core": 0.75, "atss_core_optimized": 0.6}, "ratio_vs_fcos": 0.75,
         "atss_gflop": 380.0, "atss_gflops_per_s": 253.0, "fraction_of_fp32_limit": 0.666,
         "optimized_gflops_per_s": 316.7, "optimized_fraction_of_fp32_limit": 0.833},
        {"case": "ATSS assignment", "seconds": {"atss_core": 0.05, "plain_loop": 0.5}, "speedup_vs_loop": 10.0},
        {"case": "onnxruntime vs eager 800x1216", "seconds": {"atss_core_optimized": 2.0, "onnxruntime": 1.5,
                                                              "onnxruntime_fp16": 1.2, "onnxruntime_int8": 0.6},
         "onnx": {"export_seconds": 5.0, "matched": 1.0, "eager_detections": 100, "onnx_detections": 100,
                  "variants_matched": {"onnxruntime_fp16": 0.99, "onnxruntime_int8": 0.5}}},
        {"case": "quickstart training", "quickstart": {"step_seconds": 0.12, "data_seconds": 0.006,
                                                       "data_fraction": 0.05, "iterations": 55}},
    ]}
    readme = tmp_path / "README.md"
    readme.write_text("intro\n{}\nold table\n{}\noutro\n".format(benchmark_model.README_BEGIN, benchmark_model.README_END))
    benchmark_model.update_readme(str(readme), report)
    text = readme.read_text()
    assert "old table" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert ("| inference 800x1216 | 1.50 s | 1.20 s | — | 2.00 s | 2.50 s | 0.75, 0.60 | 380 GFLOP; 253 / 317 GFLOP/s "
            "= 67% / 83% of the fp32 limit (plain / optimized) |") in text
    assert "onnxruntime 1.50 s = 0.75x the optimized eager model; 100% of its 100 detections matched" in text
    assert ("; fp16 1.20 s = 0.80x float32 onnxruntime, 99% matched; int8 0.60 s = 0.40x float32 onnxruntime, "
            "50% matched |") in text
    assert "waiting for data 0.0060 s = 5.0% of the step (mean of 55 iterations)" in text
    assert "10.0x faster than a plain loop" in text and "fp32 380 GFLOP/s" in text
    with pytest.raises(ValueError, match="markers"):
        (tmp_path / "plain.md").write_text("no markers")
        benchmark_model.update_readme(str(tmp_path / "plain.md"), report)
