"""The preparation for a lent GPU machine: tools/device_prepare.py's completeness check of the
carried wheels, tools/device_check.sh's dry run (and its refusal to go on without the wheels),
and gpu_check's JSON written step by step. Fake wheels built here: no network."""
import importlib.util
import json
import os
import subprocess
import sys
import time
import zipfile

import pytest

from tests.conftest import ROOT

SCRIPT = os.path.join(ROOT, "tools", "device_check.sh")


def load_device_prepare():
    spec = importlib.util.spec_from_file_location("device_prepare", os.path.join(ROOT, "tools", "device_prepare.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dp = load_device_prepare()


def make_wheel(folder, name, version, tag="py3-none-any", requires=(), requires_python=None):
    """A minimal .whl: just the dist-info METADATA the check reads."""
    dist = "{}-{}".format(name.replace("-", "_"), version)
    metadata = ["Metadata-Version: 2.1", "Name: " + name, "Version: " + version]
    if requires_python:
        metadata.append("Requires-Python: " + requires_python)
    metadata += ["Requires-Dist: " + r for r in requires]
    path = os.path.join(str(folder), "{}-{}.whl".format(dist, tag))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(dist + ".dist-info/METADATA", "\n".join(metadata) + "\n")
        archive.writestr(dist + ".dist-info/WHEEL", "Wheel-Version: 1.0\nTag: {}\n".format(tag))
    return path


def pin(name):
    return dp.read_pins()[name][1]


@pytest.fixture
def wheels(tmp_path):
    """A complete fake set: the real pins, the dependency shapes of the real wheels (markers for
    other platforms and Pythons, an extra) that must not count as requirements."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    make_wheel(folder, "yacs", pin("yacs"), requires=["PyYAML"])
    make_wheel(folder, "PyYAML", "6.0.4", tag="cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64")
    make_wheel(folder, "pycocotools", pin("pycocotools"), tag="cp312-abi3-manylinux2014_x86_64",
               requires=["numpy", 'matplotlib>=2.1.0; extra == "all"'], requires_python=">=3.9")
    make_wheel(folder, "pytest", pin("pytest"), requires_python=">=3.10", requires=[
        'colorama>=0.4; sys_platform == "win32"', 'tomli>=2; python_version < "3.11"', "iniconfig>=2",
        "packaging>=24", "pluggy<2,>=1.6", 'hypothesis>=6.75; extra == "dev"'])
    for name, version in (("iniconfig", "2.3.1"), ("packaging", "26.4"), ("pluggy", "1.7.0")):
        make_wheel(folder, name, version)
    return folder


def problems(folder, **kwargs):
    return dp.check(str(folder), **kwargs)["problems"]


def test_the_complete_set_passes_and_numpy_is_left_to_the_machine(wheels):
    report = dp.check(str(wheels))
    assert report["problems"] == []
    assert report["left_to_machine"] == {"numpy": ["pycocotools"]}
    why = {w["name"]: w["why"] for w in report["wheels"]}
    assert why["PyYAML"] == "needed by yacs" and why["yacs"] == "pinned in requirements"
    assert "complete:" in dp.summary(report)


def test_a_missing_dependency_wheel_makes_the_set_incomplete(wheels):
    next(wheels.glob("PyYAML-*.whl")).unlink()
    found = problems(wheels)
    assert len(found) == 1 and "yacs {} requires PyYAML, which is neither in".format(pin("yacs")) in found[0]
    assert "INCOMPLETE: 1 problem(s)" in dp.summary(dp.check(str(wheels)))


def test_a_missing_top_level_package_is_named(wheels):
    next(wheels.glob("pycocotools-*.whl")).unlink()
    assert any(p.startswith("pycocotools is missing from") for p in problems(wheels))


def test_markers_are_evaluated_for_python_3_12_not_for_this_interpreter(wheels):
    make_wheel(wheels, "extra-dep-user", "1.0", requires=['only-on-312; python_version >= "3.12"'])
    assert any("requires only-on-312" in p for p in problems(wheels))


def test_wrong_version_wrong_platform_and_size_are_problems(wheels):
    next(wheels.glob("pycocotools-*.whl")).unlink()
    make_wheel(wheels, "pycocotools", "1.0", tag="cp311-cp311-macosx_11_0_arm64", requires=["numpy"])
    found = problems(wheels, max_mib=1e-6)
    assert any("but requirements pin pycocotools==" + pin("pycocotools") in p for p in found)
    assert any("not installable on CPython 3.12 linux x86_64" in p for p in found)
    assert any("over the" in p and "MiB limit" in p for p in found)


def test_a_dependency_version_outside_its_range_is_a_problem(wheels):
    next(wheels.glob("pluggy-*.whl")).unlink()
    make_wheel(wheels, "pluggy", "2.0")
    assert any("requires pluggy<2,>=1.6, but the folder has pluggy-2.0" in p for p in problems(wheels))


def test_an_unreadable_wheel_and_a_preinstalled_package_are_problems(wheels):
    (wheels / "broken-1.0-py3-none-any.whl").write_text("not a zip")
    make_wheel(wheels, "numpy", "2.4.6", tag="cp312-cp312-manylinux_2_17_x86_64")
    found = problems(wheels)
    assert any("broken-1.0-py3-none-any.whl: not a zip archive" in p for p in found)
    assert any("numpy is preinstalled on the GPU machine" in p for p in found)


def test_malformed_requirements_are_problems_named_by_their_file(wheels, tmp_path):
    make_wheel(wheels, "odd", "1.0", requires=["numpy >>= 2"])
    assert any("odd-1.0-py3-none-any.whl: a Requires-Dist of its METADATA cannot be read" in p
               for p in problems(wheels))
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("--extra-index-url https://example.org/simple\nyacs==0.1.8\n")
    assert dp.read_pins([str(requirements)]) == {"yacs": ("yacs", "0.1.8")}
    requirements.write_text("yacs===\n")
    with pytest.raises(dp.WheelError, match="requirements.txt: 'yacs===' is not a requirement"):
        dp.read_pins([str(requirements)])


def test_a_new_requirement_must_be_classified(wheels):
    pins = dict(dp.read_pins(), **{"shiny-new-lib": ("shiny-new-lib", "1.0")})
    assert any("requirements pin shiny-new-lib but" in p for p in problems(wheels, pins=pins))


def run_script(tmp_path, wheels, *args, **env):
    out = tmp_path / "out"
    full_env = dict(os.environ, OUT=str(out), DEVICE_WHEELS=str(wheels), PYTHON=sys.executable,
                    DEVICE_WORK=str(tmp_path / "work"), **env)
    full_env.pop("DRY_RUN", None)
    result = subprocess.run(["bash", SCRIPT] + list(args), cwd=ROOT, env=full_env, capture_output=True, text=True,
                            timeout=120)
    log = (out / "device_check.log").read_text()
    with open(str(out / "device_check.json")) as f:
        state = json.load(f)
    return result, log, {p["phase"]: p for p in state["phases"]}, state


def test_the_dry_run_checks_the_wheels_and_names_every_step_that_needs_a_gpu(tmp_path, wheels):
    result, log, phases, state = run_script(tmp_path, wheels, "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert state["dry_run"] is True and state["result"] == "ok"
    assert phases["wheels"]["status"] == "ok"
    assert "complete: every requirement" in log  # device_prepare's summary is in the log
    assert phases["build"]["status"] == "skipped"
    assert "needs a GPU: CUDA build of atss_core._C for sm_90 (TORCH_CUDA_ARCH_LIST=9.0" in log
    assert phases["gpu_check"]["status"] == "skipped"
    assert "needs a GPU: tools/gpu_check.py" in log and "gpu-check needs a CUDA GPU" in log
    if sys.version_info[:2] != (3, 12):
        assert phases["install"]["status"] == "skipped"
        assert "needs Python 3.12 (the GPU machine's)" in phases["install"]["detail"]
    assert result.stdout.count("\n") >= len(phases)  # the log goes to stdout too (the run tool's tail)


def test_a_gpu_run_without_the_wheels_stops_before_the_gpu_steps(tmp_path, wheels):
    next(wheels.glob("PyYAML-*.whl")).unlink()
    result, log, phases, state = run_script(tmp_path, wheels, CUDA_HOME=str(tmp_path / "no-cuda"))
    assert result.returncode == 1
    assert state["dry_run"] is False and state["result"] == "failed"
    assert phases["wheels"]["status"] == "failed" and "requires PyYAML, which is neither in" in log
    assert phases["install"]["status"] == "failed" and "not run" in phases["install"]["detail"]
    assert phases["build"]["status"] == "failed" and "no CUDA toolkit" in phases["build"]["detail"]
    assert phases["gpu_check"]["detail"] == "not run: an earlier phase failed"


def test_gpu_check_rewrites_its_json_after_every_step_and_keeps_to_its_budget(tmp_path, monkeypatch):
    from atss_core.benchmark import gpu_check

    path = str(tmp_path / "gpu_check.json")
    seen = {}

    def second():  # what a reader sees while the second step runs; it outlasts the budget
        with open(path) as f:
            seen.update(json.load(f))
        time.sleep(0.2)
        raise RuntimeError("no kernels")

    monkeypatch.setattr(gpu_check, "require_gpu", lambda: None)
    monkeypatch.setattr(gpu_check.torch.cuda, "get_device_name", lambda index: "fake GPU")
    monkeypatch.setattr(gpu_check, "ensure_cuda_extension", lambda: "built")
    monkeypatch.setattr(gpu_check, "run_cuda_tests", second)
    monkeypatch.setattr(gpu_check, "run_ops_benchmark", lambda json_path: pytest.fail("ran after the budget"))
    assert gpu_check.run_checks(3, path, output_dir=str(tmp_path / "steps"), budget_s=0.1) is False
    assert seen["running"] == "CUDA tests" and seen["complete"] is False
    assert [(s["step"], s["ok"]) for s in seen["steps"]] == [("CUDA extension", True)]
    with open(path) as f:
        final = json.load(f)
    assert final["complete"] is True and final["running"] is None
    steps = final["steps"]
    assert [s["ok"] for s in steps] == [True] + [False] * 6
    assert steps[1]["detail"] == "RuntimeError: no kernels"  # it had started before the budget ran out
    assert all(s["detail"].startswith("not run: the 0.1 s budget was spent") for s in steps[2:])
    assert sorted(os.listdir(str(tmp_path))) == ["gpu_check.json", "steps"]  # no temp file left behind
