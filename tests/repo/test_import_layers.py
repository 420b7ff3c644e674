"""Imports inside the package flow one way (DESIGN.md): config <- utils/weights <-
structures/layers <- modeling/data/solver <- engine <- export <- benchmark (utils reads the
model catalog of config/paths_catalog.py; config imports nothing). Every import is read from
the source (also those inside functions), so a lower layer that reaches up fails here by name."""
import ast
import os

from tests.conftest import ROOT

PACKAGE = os.path.join(ROOT, "atss_core")
LAYERS = {
    "_C": 0, "config": 0,
    "utils": 1, "weights": 1,
    "structures": 2, "layers": 2,
    "modeling": 3, "data": 3, "solver": 3,
    "engine": 4,
    "export": 5,
    "benchmark": 6,
}


def _module_name(path):
    rel = os.path.relpath(path, ROOT)[:-len(".py")].split(os.sep)
    return rel[:-1] if rel[-1] == "__init__" else rel


def imported_modules(path):
    """The atss_core modules ``path`` imports, as lists of name parts (relative imports resolved)."""
    with open(path) as f:
        tree = ast.parse(f.read(), filename=path)
    own = _module_name(path)
    package = own if path.endswith("__init__.py") else own[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                found.append(base + (node.module.split(".") if node.module else []))
            elif node.module:
                found.append(node.module.split("."))
    return [parts for parts in found if parts[0] == "atss_core" and len(parts) > 1]


def layer_violations():
    violations = []
    for folder, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            own = _module_name(path)
            if len(own) < 2:
                continue  # atss_core/__init__.py
            for parts in imported_modules(path):
                if parts[1] not in LAYERS:
                    violations.append("{} imports atss_core.{}, which has no layer".format(
                        ".".join(own), ".".join(parts[1:])))
                elif LAYERS[parts[1]] > LAYERS[own[1]]:
                    violations.append("{} (layer {}) imports {} (layer {})".format(
                        ".".join(own), own[1], ".".join(parts), parts[1]))
    return violations


def test_every_subpackage_has_a_layer():
    subpackages = {name for name in os.listdir(PACKAGE) if os.path.isdir(os.path.join(PACKAGE, name))
                   and os.path.isfile(os.path.join(PACKAGE, name, "__init__.py"))}
    assert subpackages <= set(LAYERS), "add {} to LAYERS".format(subpackages - set(LAYERS))


def test_imports_flow_one_way():
    assert layer_violations() == []


def test_the_checker_sees_an_upward_import(tmp_path, monkeypatch):
    """The check itself: an upward import written inside a function is found."""
    module = tmp_path / "atss_core" / "utils" / "leak.py"
    module.parent.mkdir(parents=True)
    module.write_text("def f():\n    from atss_core.engine.trainer import do_train\n    from ..modeling import x\n")
    monkeypatch.setattr("tests.repo.test_import_layers.ROOT", str(tmp_path))
    assert imported_modules(str(module)) == [["atss_core", "engine", "trainer"], ["atss_core", "modeling"]]


def test_scripts_and_tests_do_not_edit_sys_path():
    """The package is installed (editable): scripts import it, never each other."""
    offenders = []
    for top in ("tools", "demo", "tests"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                path = os.path.join(folder, name)
                if not name.endswith(".py") or os.path.relpath(path, ROOT) in ALLOWED_PATH_EDITS:
                    continue
                with open(path) as f:
                    if "sys.path.insert" in f.read():
                        offenders.append(os.path.relpath(path, ROOT))
    assert offenders == []


# the recorder runs the official code, whose checkout must come first on sys.path; this file
# names the call it looks for
ALLOWED_PATH_EDITS = {os.path.join("tools", "dev", "record_official_outputs.py"),
                      os.path.join("tests", "repo", "test_import_layers.py"),
                      os.path.join("tests", "conftest.py")}
