"""`make gpu-check` on a machine without a GPU stops at once with a message; its CPU half
(the quickstart training whose losses a GPU run is compared with) is deterministic."""
import os
import subprocess
import sys

import pytest
import torch

from tests.conftest import ROOT

from atss_core.benchmark import gpu_check


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: make gpu-check runs for real")
def test_without_a_gpu_it_fails_at_once_with_a_message():
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gpu_check.py")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "gpu-check needs a CUDA GPU, and torch.cuda.is_available() is False" in result.stderr


def test_loss_comparison_reports_the_largest_relative_difference():
    reference = [{"loss_cls": 1.0, "loss_reg": 2.0, "loss_centerness": 0.5}] * 3
    close = [{"loss_cls": 1.0005, "loss_reg": 2.0, "loss_centerness": 0.5}] * 3
    far = [{"loss_cls": 1.0, "loss_reg": 2.0, "loss_centerness": 0.6}] * 3
    worst, ok = gpu_check.compare_losses(reference, close, rtol=1e-3)
    assert ok and worst == pytest.approx(5e-4)
    worst, ok = gpu_check.compare_losses(reference, far, rtol=1e-3)
    assert not ok and worst == pytest.approx(0.2)


def test_the_cpu_reference_training_is_repeatable(tmp_path):
    first = gpu_check.training_losses("cpu", "float32", 3, str(tmp_path / "a"))
    second = gpu_check.training_losses("cpu", "float32", 3, str(tmp_path / "b"))
    assert len(first) == 3
    worst, ok = gpu_check.compare_losses(first, second, rtol=0.0)
    assert ok and worst == 0.0
    third = gpu_check.training_losses("cpu", "float32", 3, str(tmp_path / "c"), seed=1)
    assert gpu_check.compare_losses(first, third, rtol=1e-6)[0] > 0  # the seed decides the batches and the init


def test_cuda_home_is_found_through_an_nvcc_wrapper(tmp_path, monkeypatch):
    real = tmp_path / "cuda-13.0" / "bin"
    real.mkdir(parents=True)
    (real / "nvcc").write_text("")
    wrapper_dir = tmp_path / "wrappers"
    wrapper_dir.mkdir()
    (wrapper_dir / "nvcc").write_text('#!/bin/sh\nexec "{}" "$@"\n'.format(real / "nvcc"))
    (wrapper_dir / "nvcc").chmod(0o755)
    monkeypatch.delenv("CUDA_HOME", raising=False)
    monkeypatch.setenv("PATH", os.pathsep.join([str(wrapper_dir), "/usr/bin", "/bin"]))
    assert gpu_check.cuda_home() == str(tmp_path / "cuda-13.0")
    # a wrapper that quotes the path in single quotes
    (wrapper_dir / "nvcc").write_text("#!/bin/sh\nexec '{}' \"$@\"\n".format(real / "nvcc"))
    assert gpu_check.cuda_home() == str(tmp_path / "cuda-13.0")
    monkeypatch.setenv("CUDA_HOME", "/opt/cuda")
    assert gpu_check.cuda_home() == "/opt/cuda"


def test_the_recipe_check_runs_its_switches_together_on_the_cpu(tmp_path):
    detail = gpu_check.recipe_check(str(tmp_path), device="cpu", dtype="float32",
                                    iterations=gpu_check.RECIPE_TEST_PERIOD)
    assert "cpu float32, clipping + 2 passes per step + EMA" in detail and "'iteration': 20" in detail
    assert (tmp_path / "recipe_cpu_float32" / "model_best.pth").exists()


def test_the_dense_assignment_check_compares_every_positive_type(monkeypatch):
    """The GPU step run on the CPU (against itself): every POSITIVE_TYPE reports full agreement;
    a device that disagrees fails the step by name."""
    from atss_core.benchmark import dense_assignment

    detail = gpu_check.dense_assignment_check(device="cpu", num_gt=40, anchors_per_location=1)
    assert detail.startswith("40 objects") and detail.count("100.0000% of anchors") == 4
    real = dense_assignment.sliced_assign
    calls = []

    def shifted(positive_type, *args, **kwargs):  # the second SSC call (the "device" one) is off by one anchor
        calls.append(positive_type)
        result = real(positive_type, *args, **kwargs)
        return result.roll(1) if calls.count("SSC") == 2 and positive_type == "SSC" else result
    monkeypatch.setattr(dense_assignment, "sliced_assign", shifted)
    with pytest.raises(gpu_check.CheckFailed, match="SSC"):
        gpu_check.dense_assignment_check(device="cpu", num_gt=40, anchors_per_location=1)
