"""The Dockerfiles only use what the repository has: copied paths exist and are not excluded by
.dockerignore, and the commands they run (make targets, scripts) exist."""
import fnmatch
import os
import re
import shlex

import pytest

from tests.conftest import ROOT

DOCKERFILES = ["docker/Dockerfile", "docker/Dockerfile.cpu"]


def instructions(path):
    """[(INSTRUCTION, argument string)] with line continuations joined and comments dropped."""
    with open(os.path.join(ROOT, path)) as f:
        text = re.sub(r"\\\n", " ", f.read())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def make_targets():
    with open(os.path.join(ROOT, "Makefile")) as f:
        return set(re.findall(r"^([A-Za-z0-9_.-]+):", f.read(), flags=re.M))


def dockerignore_patterns():
    with open(os.path.join(ROOT, ".dockerignore")) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def ignored(path, patterns):
    parts = path.split("/")
    return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(parts[0], p) or
               (p.startswith("**/") and any(fnmatch.fnmatch(part, p[3:]) for part in parts)) for p in patterns)


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_copies_and_runs_what_exists(dockerfile):
    steps = instructions(dockerfile)
    assert steps[0][0] == "FROM" or any(k == "FROM" for k, _ in steps)
    targets = make_targets()
    copied_everything = False
    for keyword, argument in steps:
        if keyword in ("COPY", "ADD"):
            *sources, _ = [a for a in shlex.split(argument) if not a.startswith("--")]
            for source in sources:
                assert os.path.exists(os.path.join(ROOT, source)), "{}: COPY {} does not exist".format(
                    dockerfile, source)
                copied_everything |= source == "."
        if keyword == "RUN":
            for command in re.split(r"&&|;", argument):
                words = shlex.split(command)
                if words and words[0] == "make":
                    missing = [t for t in words[1:] if "=" not in t and not t.startswith("-") and t not in targets]
                    assert not missing, "{}: make targets {} are not in the Makefile".format(dockerfile, missing)
                for word in words:
                    if word.endswith((".py", ".txt", ".sh")) and not word.startswith("/"):
                        assert os.path.exists(os.path.join(ROOT, word)), "{}: {} does not exist".format(dockerfile, word)
    assert copied_everything, "the images are built from a copy of the repository"
    # `make setup` inside the image needs these, so .dockerignore must not drop them
    patterns = dockerignore_patterns()
    for needed in ["Makefile", "setup.py", "requirements.txt", "requirements-test.txt", "csrc/vision.cpp",
                   "atss_core/__init__.py", "configs/atss/atss_R_50_FPN_1x.yaml", "tools/train_net.py"]:
        assert os.path.exists(os.path.join(ROOT, needed)) and not ignored(needed, patterns), needed


def test_dockerignore_keeps_local_builds_out():
    patterns = dockerignore_patterns()
    for local in [".venv/bin/python", "output/quickstart/model_final.pth", "datasets/synthetic/train/0.png",
                  "atss_core/_C.cpython-311-x86_64-linux-gnu.so"]:
        assert ignored(local, patterns), local
