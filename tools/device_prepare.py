#!/usr/bin/env python
"""Wheels for the lent GPU machine (`make device-prepare`), and the check that they are complete.

    python tools/device_prepare.py [--wheels DIR] [--max-mib 30]   # download (network), then check
    python tools/device_prepare.py --check [--wheels DIR]          # check only, no network

The GPU machine runs Python 3.12 with its own torch, torchvision, numpy, ... (PREINSTALLED) and has
no package registry. This downloads, for CPython 3.12 on linux x86_64, the wheels of the packages
atss_core and its CUDA tests import that it lacks (DEVICE_PACKAGES, pinned as in requirements.txt /
requirements-test.txt) and of whatever they require that is not preinstalled there, into
device_wheels/ (git-ignored; DIR or $DEVICE_WHEELS overrides). The check reads every wheel's
METADATA: each Requires-Dist that applies to cp312 linux (extras and other platforms' markers
ignored) must be met by a wheel in the folder or by a preinstalled package, every wheel must be
installable there, and the folder must stay under --max-mib. tools/device_check.sh runs the
check again on the GPU machine and installs the wheels with `pip install --no-index --no-deps`.
"""
import argparse
import email.parser
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

try:
    from packaging import tags as wheel_tags
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
except ImportError:  # the GPU machine's python may lack it; pip always carries a copy
    from pip._vendor.packaging import tags as wheel_tags
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
    from pip._vendor.packaging.specifiers import SpecifierSet
    from pip._vendor.packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIREMENTS = (os.path.join(ROOT, "requirements.txt"), os.path.join(ROOT, "requirements-test.txt"))
DEFAULT_WHEELS = os.environ.get("DEVICE_WHEELS") or os.path.join(ROOT, "device_wheels")
MAX_MIB = 30.0

# what the GPU machine has (any version): never downloaded, and a requirement on one is met
PREINSTALLED = ("torch", "torchvision", "numpy", "opencv-python-headless", "pillow", "tqdm", "onnxruntime",
                "tensorboard", "ninja")
# imported by atss_core (yacs, pycocotools) and by the CUDA tests gpu_check runs (pytest)
DEVICE_PACKAGES = ("yacs", "pycocotools", "pytest")
# pins of requirements*.txt that need not travel: the GPU check never imports them
NOT_CARRIED = {
    "faster-coco-eval": "optional COCO evaluation backend",
    "matplotlib": "only the quickstart / ablation charts import it",
    "onnx": "ONNX export tests, not among the CUDA tests",
}

TARGET_PYTHON = (3, 12)
TARGET_ABI = "cp312"
# manylinux up to glibc 2.28 (the newest the download flags ask for), then plain linux
TARGET_PLATFORMS = (["manylinux_2_{}_x86_64".format(minor) for minor in range(28, 16, -1)]
                    + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64"])
# pip matches manylinux_2_N exactly, so every N is named
PIP_PLATFORMS = tuple(p for p in TARGET_PLATFORMS if p != "linux_x86_64") + ("any",)
# the environment markers evaluate in on the GPU machine; "extra" empty: extras are never installed
TARGET_MARKER_ENV = {
    "python_version": "3.12", "python_full_version": "3.12.3", "implementation_name": "cpython",
    "implementation_version": "3.12.3", "platform_python_implementation": "CPython", "os_name": "posix",
    "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "platform_release": "",
    "platform_version": "", "extra": "",
}


class WheelError(Exception):
    pass


def read_pins(paths=REQUIREMENTS):
    """{canonical name: (name, version)} of the `name==version` lines of the requirements files
    (following `-r other.txt`)."""
    pins = {}
    for path in paths:
        with open(path) as f:
            for raw in f:
                line = raw.split("#", 1)[0].strip()
                if not line:
                    continue
                if line.startswith(("-r ", "--requirement ")):
                    included = os.path.join(os.path.dirname(path), line.split(None, 1)[1])
                    pins.update(read_pins([included]))
                    continue
                if line.startswith("-"):  # a pip option (--extra-index-url ...), not a package
                    continue
                try:
                    req = Requirement(line)
                except InvalidRequirement as error:
                    raise WheelError("{}: {!r} is not a requirement ({})".format(path, line, error))
                exact = [s for s in req.specifier if s.operator == "=="]
                if exact:
                    pins[canonicalize_name(req.name)] = (req.name, exact[0].version)
    return pins


def target_tags():
    return set(wheel_tags.cpython_tags(TARGET_PYTHON, abis=[TARGET_ABI], platforms=TARGET_PLATFORMS)) | set(
        wheel_tags.compatible_tags(TARGET_PYTHON, "cp312", platforms=TARGET_PLATFORMS))


def applies_on_target(req):
    return req.marker is None or req.marker.evaluate(dict(TARGET_MARKER_ENV))


class Wheel:
    """One .whl: its name and version from the file name, its requirements from METADATA."""

    def __init__(self, path):
        self.path = path
        self.file = os.path.basename(path)
        try:
            name, version, _, self.tags = parse_wheel_filename(self.file)
        except InvalidWheelFilename as error:
            raise WheelError("{}: not a wheel file name ({})".format(self.file, error))
        self.key, self.version = canonicalize_name(name), version
        self.size = os.path.getsize(path)
        try:
            with zipfile.ZipFile(path) as archive:
                found = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
                if len(found) != 1:
                    raise WheelError("{}: expected one *.dist-info/METADATA, found {}".format(self.file, len(found)))
                metadata = email.parser.BytesParser().parsebytes(archive.read(found[0]))
        except zipfile.BadZipFile as error:
            raise WheelError("{}: not a zip archive ({})".format(self.file, error))
        self.name = metadata.get("Name") or name
        if canonicalize_name(self.name) != self.key or metadata.get("Version") not in (None, str(version)):
            raise WheelError("{}: METADATA says {} {}".format(self.file, self.name, metadata.get("Version")))
        self.requires_python = metadata.get("Requires-Python")
        try:
            self.requires = [Requirement(r) for r in metadata.get_all("Requires-Dist") or []]
        except InvalidRequirement as error:
            raise WheelError("{}: a Requires-Dist of its METADATA cannot be read ({})".format(self.file, error))

    def needs(self):
        """The requirements that apply on the GPU machine (no extras, cp312 linux markers)."""
        return [r for r in self.requires if applies_on_target(r)]


def load_wheels(folder):
    """The wheels of ``folder`` and the problems met reading them."""
    wheels, problems = [], []
    for file in sorted(os.listdir(folder)):
        if file.endswith(".whl"):
            try:
                wheels.append(Wheel(os.path.join(folder, file)))
            except WheelError as error:
                problems.append(str(error))
    return wheels, problems


def check(folder, pins=None, max_mib=MAX_MIB, preinstalled=PREINSTALLED, packages=DEVICE_PACKAGES):
    """Checks that ``folder`` holds a complete, installable, small enough set of wheels for the GPU
    machine. Returns a report: wheels (file, name, version, bytes, why), problems (empty when
    complete), left_to_machine ({preinstalled package: [who needs it]}), total_bytes."""
    pins = read_pins() if pins is None else pins
    preinstalled = {canonicalize_name(p) for p in preinstalled}
    report = {"folder": os.path.abspath(folder), "wheels": [], "problems": [], "warnings": [],
              "left_to_machine": {}, "total_bytes": 0, "max_mib": max_mib}
    problems = report["problems"]
    if not os.path.isdir(folder):
        problems.append("no wheel folder {}: run `make device-prepare` (with network) first".format(folder))
        return report
    wheels, unreadable = load_wheels(folder)
    problems += unreadable
    if not wheels and not problems:
        problems.append("{} holds no .whl files: run `make device-prepare` first".format(folder))
    by_key = {}
    supported = target_tags()
    for wheel in wheels:
        if wheel.key in by_key:
            problems.append("two wheels of {}: {} and {} (pip would install both)".format(
                wheel.name, by_key[wheel.key].file, wheel.file))
        by_key[wheel.key] = wheel
        if not (wheel.tags & supported):
            problems.append("{}: not installable on CPython 3.12 linux x86_64 (tags {})".format(
                wheel.file, ", ".join(sorted(str(t) for t in wheel.tags))))
        if wheel.requires_python and not SpecifierSet(wheel.requires_python).contains(
                "{}.{}".format(*TARGET_PYTHON), prereleases=True):
            problems.append("{}: Requires-Python {} excludes 3.12".format(wheel.file, wheel.requires_python))
        if wheel.key in preinstalled:
            problems.append("{}: {} is preinstalled on the GPU machine; carrying it would shadow that one".format(
                wheel.file, wheel.name))
    why = {}
    for package in packages:
        key = canonicalize_name(package)
        why[key] = "pinned in requirements" if key in pins else "top-level"
        if key not in by_key:
            problems.append("{} is missing from {} (the GPU machine lacks it)".format(package, folder))
        elif key in pins and str(by_key[key].version) != pins[key][1]:
            problems.append("{} is {}, but requirements pin {}=={}".format(
                by_key[key].file, by_key[key].version, pins[key][0], pins[key][1]))
    for wheel in wheels:
        for req in wheel.needs():
            key = canonicalize_name(req.name)
            if key in preinstalled:
                report["left_to_machine"].setdefault(req.name, []).append(wheel.name)
            elif key not in by_key:
                problems.append("{} {} requires {}, which is neither in {} nor preinstalled on the GPU machine".format(
                    wheel.name, wheel.version, req, folder))
            elif not req.specifier.contains(by_key[key].version, prereleases=True):
                problems.append("{} {} requires {}, but the folder has {}".format(
                    wheel.name, wheel.version, req, by_key[key].file))
            else:
                why.setdefault(key, "needed by " + wheel.name)
    for wheel in wheels:
        if wheel.key not in why:
            report["warnings"].append("{}: nothing needs it (harmless, but it travels)".format(wheel.file))
        report["wheels"].append({"file": wheel.file, "name": wheel.name, "version": str(wheel.version),
                                 "bytes": wheel.size, "why": why.get(wheel.key, "unused")})
    report["total_bytes"] = sum(w.size for w in wheels)
    if report["total_bytes"] > max_mib * 2 ** 20:
        problems.append("the wheels take {:.1f} MiB, over the {:.0f} MiB limit".format(
            report["total_bytes"] / 2 ** 20, max_mib))
    unclassified = sorted(name for key, (name, _) in pins.items()
                          if key not in preinstalled and key not in why and key not in NOT_CARRIED)
    if unclassified:
        problems.append("requirements pin {} but tools/device_prepare.py neither carries it nor lists it as "
                        "preinstalled or not needed on the GPU machine".format(", ".join(unclassified)))
    return report


def summary(report):
    lines = ["device wheels in {} (for CPython 3.12, linux x86_64):".format(report["folder"])]
    for w in report["wheels"]:
        lines.append("  {:<12} {:<8} {:>8.1f} KiB  {:<22} {}".format(w["name"], w["version"], w["bytes"] / 1024,
                                                                    w["why"], w["file"]))
    lines.append("total {:.2f} MiB in {} wheels (limit {:.0f} MiB)".format(
        report["total_bytes"] / 2 ** 20, len(report["wheels"]), report["max_mib"]))
    if report["left_to_machine"]:
        lines.append("met by the GPU machine's own packages: " + ", ".join(
            "{} (for {})".format(name, ", ".join(sorted(set(who)))) for name, who in sorted(report["left_to_machine"].items())))
    lines.append("not carried (not needed there): " + ", ".join(sorted(NOT_CARRIED)))
    lines += ["warning: " + w for w in report["warnings"]]
    if report["problems"]:
        lines.append("INCOMPLETE: {} problem(s):".format(len(report["problems"])))
        lines += ["  - " + p for p in report["problems"]]
    else:
        lines.append("complete: every requirement that applies on cp312 linux is in the folder or preinstalled")
    return "\n".join(lines)


def pip_download(spec, dest):
    """Downloads one cp312 linux wheel of ``spec`` (no dependencies: we resolve them, because pip
    would also fetch what the GPU machine already has); returns pip's error text or None."""
    command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
               "--only-binary=:all:", "--python-version", "3.12", "--implementation", "cp", "--abi", TARGET_ABI]
    for platform in PIP_PLATFORMS:
        command += ["--platform", platform]
    result = subprocess.run(command + ["--dest", dest, spec], capture_output=True, text=True)
    return None if result.returncode == 0 else (result.stderr.strip().splitlines() or ["pip failed"])[-1]


def local_version(name):
    """The version installed here (what the tests run with), used for unpinned dependencies."""
    try:
        from importlib.metadata import PackageNotFoundError, version
        return version(name)
    except (ImportError, PackageNotFoundError):
        return None


def download(folder, pins=None, preinstalled=PREINSTALLED, packages=DEVICE_PACKAGES):
    """Fills ``folder`` with DEVICE_PACKAGES and their dependency closure minus ``preinstalled``:
    downloaded into a fresh folder that then replaces ``folder``, so no stale wheel stays."""
    pins = read_pins() if pins is None else pins
    preinstalled = {canonicalize_name(p) for p in preinstalled}
    staging = tempfile.mkdtemp(prefix="device_wheels.")  # outside the checkout: nothing left there if stopped
    try:
        queue = [Requirement(pins[canonicalize_name(p)][0] + "==" + pins[canonicalize_name(p)][1])
                 if canonicalize_name(p) in pins else Requirement(p) for p in packages]
        done = set()
        while queue:
            req = queue.pop(0)
            key = canonicalize_name(req.name)
            if key in preinstalled or key in done:
                continue  # a second requirement on a fetched package is validated by check()
            done.add(key)
            candidates = []
            if key in pins:
                candidates.append("{}=={}".format(req.name, pins[key][1]))
            here = local_version(req.name)
            if here and req.specifier.contains(here, prereleases=True):
                candidates.append("{}=={}".format(req.name, here))
            candidates.append(str(Requirement(req.name + str(req.specifier))))
            errors = []
            for spec in candidates:
                print("downloading {} ...".format(spec), flush=True)
                error = pip_download(spec, staging)
                if error is None:
                    break
                errors.append("{}: {}".format(spec, error))
            else:
                raise WheelError("no CPython 3.12 linux wheel of {}: {}".format(req, "; ".join(errors)))
            fetched = [w for w in load_wheels(staging)[0] if w.key == key]
            if not fetched:
                raise WheelError("pip downloaded nothing named {} for {}".format(req.name, spec))
            queue += fetched[0].needs()
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        shutil.move(staging, folder)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheels", default=DEFAULT_WHEELS, help="the wheel folder (default $DEVICE_WHEELS or "
                        "device_wheels/)")
    parser.add_argument("--check", action="store_true", help="only check the folder (no network)")
    parser.add_argument("--max-mib", type=float, default=MAX_MIB, help="largest total size of the wheels")
    args = parser.parse_args(argv)
    try:
        if not args.check:
            download(args.wheels)
        report = check(args.wheels, max_mib=args.max_mib)
    except (WheelError, OSError) as error:
        print("device-prepare: " + str(error), file=sys.stderr)
        return 1
    print(summary(report), flush=True)
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
