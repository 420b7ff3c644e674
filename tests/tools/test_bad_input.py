"""Every kind of bad input given to train_net.py, test_net.py and the demo ends with one
message that names the problem, a non-zero exit status and no traceback (the cases run as
subprocesses, a few at a time, and each test checks one)."""
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from tests.tools.test_train_test_net import ROOT, TINY_MODEL, make_dataset


def _coco(folder):
    return "coco:{}:{}".format(folder / "images", folder / "ann.json")


def _edit_json(folder, edit):
    path = folder / "ann.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _build_cases(base):
    """name -> (script, arguments, environment additions); data prepared under ``base``."""
    good = make_dataset(base / "good")
    config = base / "tiny.yaml"
    config.write_text(TINY_MODEL)
    cfg = ["--config-file", str(config)]

    def with_data(train, test=None, *extra):
        return ["DATASETS.TRAIN", "('{}',)".format(train), "DATASETS.TEST", "('{}',)".format(test or train), *extra]

    def variant(name, edit=None, remove_image=None, ann_text=None):
        folder = base / name
        shutil.copytree(base / "good", folder)
        if edit is not None:
            _edit_json(folder, edit)
        if remove_image is not None:
            os.remove(folder / "images" / remove_image)
        if ann_text is not None:
            (folder / "ann.json").write_text(ann_text)
        return _coco(folder)

    (base / "not_a_checkpoint.pth").write_bytes(b"these are not weights" * 10)
    (base / "a_file").write_text("")
    voc = base / "voc"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (voc / sub).mkdir(parents=True)
    (voc / "ImageSets/Main/train.txt").write_text("000001\n")
    (voc / "Annotations/000001.xml").write_text("<annotation><size><width>64</width>")  # cut off
    shutil.copy(base / "good" / "images" / "0.png", voc / "JPEGImages" / "000001.jpg")

    train = ("train_net.py", "--skip-test")
    return {
        "missing config file": (train, ["--config-file", str(base / "nope.yaml")], {}),
        "unknown config key": (train, cfg + with_data(good, None, "MODEL.ATSS.TOPKK", "9"), {}),
        "value of the wrong type": (train, cfg + with_data(good, None, "SOLVER.MAX_ITER", "many"), {}),
        "missing dataset folder": (train, cfg + with_data("coco:{}:{}".format(base / "nowhere",
                                                                             base / "good" / "ann.json")), {}),
        "missing annotation file": (train, cfg + with_data("coco:{}:{}".format(base / "good" / "images",
                                                                              base / "no.json")), {}),
        "missing image": (train, cfg + with_data(variant("missing_image", remove_image="3.png")), {}),
        "malformed annotation json": (train, cfg + with_data(variant("bad_json", ann_text='{"images": [')), {}),
        "malformed voc xml": (train, cfg + with_data("voc:{}:train".format(voc)), {}),
        "unknown category id": (train, cfg + with_data(variant(
            "bad_category", edit=lambda d: d["annotations"][4].update(category_id=42))), {}),
        "labels beyond NUM_CLASSES": (train, cfg + with_data(good, None, "MODEL.ATSS.NUM_CLASSES", "2"), {}),
        "missing weights file": (("test_net.py",), cfg + with_data(good, None, "MODEL.WEIGHT",
                                                                   str(base / "none.pth")), {}),
        "not a checkpoint": (("test_net.py",), cfg + with_data(good, None, "MODEL.WEIGHT",
                                                               str(base / "not_a_checkpoint.pth")), {}),
        "mismatched checkpoint": (("test_net.py",), cfg + with_data(good, None, "MODEL.WEIGHT",
                                                                    str(base / "classes81.pth")), {}),
        "output folder cannot be written": (train, cfg + with_data(good, None, "OUTPUT_DIR",
                                                                   str(base / "a_file" / "out")), {}),
        "batch not divisible by processes": (train, cfg + with_data(good, None, "SOLVER.IMS_PER_BATCH", "3"),
                                             {"WORLD_SIZE": "2"}),
        "test batch not divisible by processes": (("test_net.py",), cfg + with_data(
            good, None, "TEST.IMS_PER_BATCH", "3", "MODEL.WEIGHT", str(base / "classes81.pth")),
            {"WORLD_SIZE": "2"}),
        "ImageNet weights to evaluate": (("test_net.py",), cfg + with_data(
            good, None, "MODEL.WEIGHT", "catalog://ImageNetPretrained/MSRA/R-50"), {}),
        "GPU config without a GPU": (train, cfg + with_data(good, None, "MODEL.DEVICE", "cuda"), {}),
        "demo without weights file": (("../demo/atss_demo.py",), cfg + [
            "--weights", str(base / "none.pth"), "--input", str(base / "good" / "images"),
            "--output", str(base / "demo_out")], {}),
    }


EXPECTED = {
    "missing config file": "config file not found: ",
    "unknown config key": "unknown config key 'MODEL.ATSS.TOPKK' in the command-line overrides (did you mean "
                          "'MODEL.ATSS.TOPK'?)",
    "value of the wrong type": "config key SOLVER.MAX_ITER expects a value of type int (current value 4), got many of type str",
    "missing dataset folder": "COCO image folder not found: ",
    "missing annotation file": "COCO annotation file not found: ",
    "missing image": "1 of the 6 images of ",
    "malformed annotation json": "could not parse COCO annotation file ",
    "malformed voc xml": "could not parse VOC annotation ",
    "unknown category id": "annotation 5 has category_id 42, which is not among the categories [1, 2]",
    "labels beyond NUM_CLASSES": "has 2 categories but MODEL.ATSS.NUM_CLASSES is 2 (background included): set "
                                 "MODEL.ATSS.NUM_CLASSES 3",
    "missing weights file": "checkpoint/weights file not found: ",
    "not a checkpoint": "could not read checkpoint ",
    "mismatched checkpoint": "rpn.head.cls_logits.weight model (2, 64, 3, 3) vs checkpoint (80, 64, 3, 3)",
    "output folder cannot be written": "cannot be written",
    "batch not divisible by processes": "SOLVER.IMS_PER_BATCH (3) must be a positive multiple of the number of "
                                        "processes (2)",
    "test batch not divisible by processes": "TEST.IMS_PER_BATCH (3) must be a positive multiple of the number of "
                                             "processes (2)",
    "GPU config without a GPU": "MODEL.DEVICE is 'cuda' but no CUDA device is available",
    "ImageNet weights to evaluate": "MODEL.WEIGHT catalog://ImageNetPretrained/MSRA/R-50 holds ImageNet backbone "
                                    "weights only, not a detector",
    "demo without weights file": "checkpoint/weights file not found: ",
}


def _run(script, args, env_extra, output_dir):
    path = os.path.normpath(os.path.join(ROOT, "tools", script[0]))
    command = [sys.executable, path, *args]
    if script[0].endswith("_net.py") and "OUTPUT_DIR" not in args:
        command += ["OUTPUT_DIR", str(output_dir)]
    if len(script) > 1:
        command.insert(2, script[1])
    env = dict(os.environ, OMP_NUM_THREADS="1", **env_extra)
    env.pop("LOCAL_RANK", None)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from atss_core.config import cfg as default_cfg
    from atss_core.modeling.detector import build_detection_model

    base = tmp_path_factory.mktemp("bad_input")
    cases = _build_cases(base)
    cfg = default_cfg.clone()
    cfg.merge_from_file(str(base / "tiny.yaml"))
    cfg.merge_from_list(["MODEL.ATSS.NUM_CLASSES", 81])
    torch.save({"model": build_detection_model(cfg).state_dict()}, base / "classes81.pth")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(_run, script, args, env, base / "out" / name.replace(" ", "_"))
                   for name, (script, args, env) in cases.items()}
        return {name: future.result() for name, future in futures.items()}


def test_every_case_has_an_expected_message(tmp_path):
    assert set(_build_cases(tmp_path)) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_ends_with_one_clear_message(results, name):
    if name == "GPU config without a GPU" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = results[name]
    assert result.returncode == 1, (result.returncode, result.stderr[-2000:])
    assert EXPECTED[name] in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]


def test_debug_flag_shows_the_traceback(tmp_path):
    result = _run(("train_net.py",), ["--config-file", str(tmp_path / "nope.yaml"), "--debug"], {}, tmp_path)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "config file not found" in result.stderr


# the part of each message that the README's troubleshooting table quotes
README_PHRASES = {
    "missing config file": "config file not found",
    "unknown config key": "unknown config key",
    "value of the wrong type": "expects a value of type",
    "missing dataset folder": "COCO image folder not found",
    "missing annotation file": "COCO annotation file not found",
    "missing image": "are missing, e.g.",
    "malformed annotation json": "could not parse COCO annotation file",
    "malformed voc xml": "could not parse VOC annotation",
    "unknown category id": "which is not among the categories",
    "labels beyond NUM_CLASSES": "but MODEL.ATSS.NUM_CLASSES is",
    "missing weights file": "checkpoint/weights file not found",
    "not a checkpoint": "could not read checkpoint",
    "mismatched checkpoint": "does not fit the model built from the config",
    "output folder cannot be written": "cannot be written",
    "batch not divisible by processes": "must be a positive multiple of the number of processes",
    "test batch not divisible by processes": "must be a positive multiple of the number of processes",
    "GPU config without a GPU": "MODEL.DEVICE is 'cuda' but no CUDA device is available",
    "ImageNet weights to evaluate": "holds ImageNet backbone weights only",
    "demo without weights file": "checkpoint/weights file not found",
}


def test_readme_troubleshooting_lists_every_message(results):
    readme = open(os.path.join(ROOT, "README.md")).read()
    section = readme[readme.index("## Troubleshooting"):readme.index("## Tests")]
    assert set(README_PHRASES) == set(EXPECTED)
    for name, phrase in README_PHRASES.items():
        assert phrase in section, name
        if name != "GPU config without a GPU" or not torch.cuda.is_available():
            assert phrase in results[name].stderr, name
