"""The official atss_core's public Python names exist at their official paths with the official
leading parameters (tests/data/official/python_api.json, made by tools/dev/record_official_api.py
from the official sources), so that code written against the official package imports and calls
ours unchanged."""
import importlib
import inspect
import json
import os

import pytest

API_FILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "official", "python_api.json")
with open(API_FILE) as f:
    OFFICIAL_API = json.load(f)


def positional_parameters(obj):
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in inspect.signature(obj).parameters.values() if p.kind in kinds]


def test_the_recorded_api_covers_the_modules_users_build_on():
    modules = {row["module"] for row in OFFICIAL_API}
    for module in ("atss_core.modeling.rpn.atss.atss", "atss_core.modeling.rpn.atss.loss", "atss_core.utils.checkpoint",
                   "atss_core.data.build", "atss_core.engine.inference", "atss_core.engine.bbox_aug_vote",
                   "atss_core.modeling.backbone.resnet"):
        assert module in modules, module
    assert len(OFFICIAL_API) > 100


@pytest.mark.parametrize("row", OFFICIAL_API, ids=lambda row: "{}.{}".format(row["module"], row["name"]))
def test_official_name_exists_with_its_leading_parameters(row):
    module = importlib.import_module(row["module"])
    assert hasattr(module, row["name"]), "{} has no {}".format(row["module"], row["name"])
    expected = row["leading_parameters"]
    if expected is None:  # a class without its own __init__
        return
    ours = positional_parameters(getattr(module, row["name"]))
    assert ours[:len(expected)] == expected, "official {}, ours {}".format(expected, ours)
