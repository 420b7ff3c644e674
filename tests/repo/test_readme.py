"""Every command in the README's shell blocks names things that exist: scripts, their flags
(as their own --help lists them), launcher flags, make targets and variables, config files,
config keys, repository paths."""
import functools
import os
import re
import shlex
import subprocess
import sys

import pytest

from atss_core.config import cfg as default_cfg
from tests.conftest import ROOT

REPO_DIRS = ("configs/", "tools/", "demo/", "docker/", "data/", "csrc/", ".ci/", "atss_core/", "tests/")
CONFIG_KEY = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)+$")


def readme():
    with open(os.path.join(ROOT, "README.md")) as f:
        return f.read()


def shell_commands():
    """Each command of each ```bash block as a word list (continuations joined, comments dropped)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", readme(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words:
                commands.append(words)
    return commands


@functools.lru_cache(maxsize=None)
def help_text(*command):
    result = subprocess.run([sys.executable, *command, "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, "{} --help failed:\n{}".format(" ".join(command), result.stderr[-2000:])
    return result.stdout


def flags(words):
    return [w.split("=", 1)[0] for w in words if w.startswith("--")]


def lists_flag(usage, flag):
    return re.search(r"(^|[\s,\[]){}([\s,=\]]|$)".format(re.escape(flag)), usage, flags=re.M) is not None


def config_has(key):
    node = default_cfg
    for part in key.split("."):
        if part not in node:
            return False
        node = node[part]
    return True


def test_the_readme_has_shell_commands_with_the_two_main_ones_first():
    commands = shell_commands()
    assert len(commands) > 20
    assert commands[0][:2] == ["make", "demo"] and commands[1][:2] == ["make", "test"]


def test_make_targets_and_variables_exist():
    with open(os.path.join(ROOT, "Makefile")) as f:
        makefile = f.read()
    targets = set(re.findall(r"^([A-Za-z0-9_.-]+):", makefile, flags=re.M))
    text = readme()
    mentioned = [shlex.split(m) for m in re.findall(r"`(make [^`]+)`", text)]
    for words in [c for c in shell_commands() if c[0] == "make"] + mentioned:
        for word in words[1:]:
            if "=" in word:
                assert re.search(r"^{}\s*\?=".format(re.escape(word.split("=")[0])), makefile, flags=re.M), word
            else:
                assert word in targets, "make {} is not a Makefile target".format(word)


def _script_and_launcher(words):
    """(launcher words, script path, script words) of a python/torchrun command, else None."""
    script_at = next((i for i, w in enumerate(words) if w.endswith(".py")), None)
    if script_at is None or not any(w in ("python", "torchrun") for w in words[:script_at]):
        return None
    return words[:script_at], words[script_at], words[script_at + 1:]


def test_scripts_and_their_flags_exist():
    checked = 0
    for words in shell_commands():
        parsed = _script_and_launcher(words)
        if parsed is None:
            continue
        launcher, script, script_words = parsed
        assert os.path.isfile(os.path.join(ROOT, script)), script
        if script == "setup.py":
            continue
        usage = help_text(script)
        for flag in flags(script_words):
            assert lists_flag(usage, flag), "{} has no flag {}".format(script, flag)
        if "torchrun" in launcher or "torch.distributed.launch" in launcher:
            launcher_help = help_text("-m", "torch.distributed.run")
            for flag in flags(launcher):
                assert lists_flag(launcher_help, flag), "torchrun has no flag {}".format(flag)
        checked += 1
    assert checked >= 10


def test_config_keys_on_command_lines_exist():
    keys = [w for words in shell_commands() for w in words if CONFIG_KEY.match(w)]
    assert "TEST.BBOX_AUG.ENABLED" in keys and "MODEL.WEIGHT" in keys
    missing = [k for k in keys if not config_has(k)]
    assert not missing, "README overrides keys that do not exist: {}".format(missing)


def test_repository_paths_named_anywhere_exist():
    text = readme()
    paths = set(re.findall(r"(?<![\w/.])((?:{})[\w./-]*[\w])".format("|".join(re.escape(d) for d in REPO_DIRS)),
                           text))
    paths |= {w for words in shell_commands() for w in words if w.startswith(REPO_DIRS)}
    assert "configs/atss/atss_R_50_FPN_1x.yaml" in paths and "docker/Dockerfile" in paths
    missing = sorted(p for p in paths if not os.path.exists(os.path.join(ROOT, p)))
    assert not missing, "README names paths that do not exist: {}".format(missing)


@pytest.mark.parametrize("name", ["atss_R_50_FPN_1x", "atss_dcnv2_R_50_FPN_1x", "atss_R_101_FPN_1x",
                                  "atss_dcnv2_R_101_FPN_1x", "atss_R_101_FPN_2x", "atss_dcnv2_R_101_FPN_2x",
                                  "atss_X_101_32x8d_FPN_2x", "atss_dcnv2_X_101_32x8d_FPN_2x",
                                  "atss_X_101_64x4d_FPN_2x", "atss_dcnv2_X_101_64x4d_FPN_2x"])
def test_the_model_zoo_table_lists_every_official_config(name):
    rows = [line for line in readme().splitlines() if line.startswith("| `configs/atss/{}.yaml`".format(name))]
    assert len(rows) == 1, name
