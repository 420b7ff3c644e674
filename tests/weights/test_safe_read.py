"""A weights file cannot run code: malicious .pth and .pkl files (built here, each trying to
create a marker file when unpickled) are refused by the checkpointer and by every entry
point, while official-layout checkpoints, bare and `module.`-prefixed state dicts and
Caffe2-style pickles load; MODEL.TRUST_WEIGHT_FILE True is the opt-in for trusted files."""
import argparse
import datetime
import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from atss_core.solver import make_lr_scheduler, make_optimizer
from atss_core.utils.checkpoint import DetectronCheckpointer
from atss_core.weights.safe_read import UntrustedWeightsError
from tests.conftest import ROOT
from tests.utils.test_checkpoint import assert_same_weights, tiny_model


class RunsCode:
    """Unpickling this calls os.system: what a malicious weights file does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, ("touch {}".format(self.marker),)


def write_malicious(tmp_path, model):
    marker = tmp_path / "code_ran"
    torch.save({"model": model.state_dict(), "iteration": RunsCode(marker)}, tmp_path / "evil.pth")
    blobs = {"conv1_w": np.zeros((64, 3, 7, 7), np.float32), "payload": RunsCode(marker)}
    with open(tmp_path / "evil.pkl", "wb") as f:
        pickle.dump({"blobs": blobs}, f, protocol=2)
    return marker


def test_malicious_pth_and_pkl_are_refused_without_running_code(tmp_path):
    cfg, model = tiny_model()
    marker = write_malicious(tmp_path, model)
    for name in ("evil.pth", "evil.pkl"):
        with pytest.raises(UntrustedWeightsError) as error:
            DetectronCheckpointer(cfg, model).load(str(tmp_path / name))
        message = str(error.value)
        assert str(tmp_path / name) in message and "system" in message and "MODEL.TRUST_WEIGHT_FILE True" in message
    assert not marker.exists()


def test_resuming_from_a_malicious_last_checkpoint_is_refused(tmp_path):
    cfg, model = tiny_model()
    marker = write_malicious(tmp_path, model)
    (tmp_path / "last_checkpoint").write_text("evil.pth")
    with pytest.raises(UntrustedWeightsError):
        DetectronCheckpointer(cfg, model, save_dir=str(tmp_path), save_to_disk=True).load()
    assert not marker.exists()


def official_layout_checkpoint(cfg, model):
    """model / optimizer (SGD with momentum buffers) / scheduler (WarmupMultiStepLR) / iteration,
    as the official trainer saves them."""
    optimizer = make_optimizer(cfg, model)
    scheduler = make_lr_scheduler(cfg, optimizer)
    for param in model.parameters():
        param.grad = torch.ones_like(param)
    optimizer.step()
    scheduler.step()
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "iteration": 90000}


@pytest.mark.parametrize("zip_format", [True, False])  # the official files predate torch's zip format
def test_official_layout_checkpoint_loads_with_optimizer_and_scheduler(tmp_path, zip_format):
    cfg, model = tiny_model()
    saved = official_layout_checkpoint(cfg, model)
    torch.save(saved, tmp_path / "official.pth", _use_new_zipfile_serialization=zip_format)
    (tmp_path / "last_checkpoint").write_text("official.pth")
    _, other = tiny_model(seed=5)
    optimizer = make_optimizer(cfg, other)
    scheduler = make_lr_scheduler(cfg, optimizer)
    extra = DetectronCheckpointer(cfg, other, optimizer, scheduler, save_dir=str(tmp_path), save_to_disk=True).load()
    assert extra == {"iteration": 90000}
    assert_same_weights(model, other)
    assert scheduler.state_dict() == saved["scheduler"]
    restored, expected = optimizer.state_dict()["state"], saved["optimizer"]["state"]
    assert restored.keys() == expected.keys() and len(restored) > 0
    assert all(torch.equal(restored[k]["momentum_buffer"], expected[k]["momentum_buffer"]) for k in expected)


def test_caffe2_pickles_load_in_both_pickle_protocols(tmp_path):
    cfg, model = tiny_model()
    stem = model.backbone.body.stem.conv1.weight
    blobs = {"conv1_w": np.full(tuple(stem.shape), 0.25, np.float32), "lr": np.float32(0.1),
             "fc1000_w": np.zeros((4, 4), np.float32)}
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / "R-{}.pkl".format(protocol)
        with open(path, "wb") as f:
            pickle.dump({"blobs": blobs}, f, protocol=protocol)
        DetectronCheckpointer(cfg, model).load(str(path))
        assert torch.all(model.backbone.body.stem.conv1.weight == 0.25)
        with torch.no_grad():
            model.backbone.body.stem.conv1.weight.zero_()


def test_opt_in_loads_a_trusted_file_that_needs_more_than_plain_data(tmp_path):
    cfg, model = tiny_model()
    torch.save({"model": model.state_dict(), "args": argparse.Namespace(lr=0.01)}, tmp_path / "with_args.pth")
    stem = model.backbone.body.stem.conv1.weight
    with open(tmp_path / "dated.pkl", "wb") as f:
        pickle.dump({"blobs": {"conv1_w": np.ones(tuple(stem.shape), np.float32)},
                     "created": datetime.date(2017, 12, 20)}, f)
    for name, refused in (("with_args.pth", "argparse.Namespace"), ("dated.pkl", "datetime.date")):
        with pytest.raises(UntrustedWeightsError, match=refused):
            DetectronCheckpointer(cfg, model).load(str(tmp_path / name))
    trusting = cfg.clone()
    trusting.merge_from_list(["MODEL.TRUST_WEIGHT_FILE", True])
    _, other = tiny_model(seed=6)
    DetectronCheckpointer(trusting, other).load(str(tmp_path / "with_args.pth"))
    assert_same_weights(model, other)
    DetectronCheckpointer(trusting, other).load(str(tmp_path / "dated.pkl"))
    assert torch.all(other.backbone.body.stem.conv1.weight == 1)


def test_no_entry_point_runs_the_code_of_a_malicious_file(tmp_path):
    from tests.tools.test_train_test_net import TINY_MODEL, make_dataset

    cfg, model = tiny_model()
    marker = write_malicious(tmp_path, model)
    dataset = make_dataset(tmp_path / "data", n=2)
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_MODEL)
    data = ["DATASETS.TRAIN", "('{}',)".format(dataset), "DATASETS.TEST", "('{}',)".format(dataset)]
    resume_dir = tmp_path / "resume"
    resume_dir.mkdir()
    (resume_dir / "evil.pth").write_bytes((tmp_path / "evil.pth").read_bytes())
    (resume_dir / "last_checkpoint").write_text("evil.pth")
    net = ["--config-file", str(config)] + data
    commands = {
        "train_net .pth": ["tools/train_net.py", *net, "MODEL.WEIGHT", str(tmp_path / "evil.pth"),
                           "OUTPUT_DIR", str(tmp_path / "o1")],
        "train_net .pkl": ["tools/train_net.py", *net, "MODEL.WEIGHT", str(tmp_path / "evil.pkl"),
                           "OUTPUT_DIR", str(tmp_path / "o2")],
        "train_net resume": ["tools/train_net.py", *net, "OUTPUT_DIR", str(resume_dir)],
        "test_net .pth": ["tools/test_net.py", *net, "MODEL.WEIGHT", str(tmp_path / "evil.pth"),
                          "OUTPUT_DIR", str(tmp_path / "o3")],
        "demo .pkl": ["demo/atss_demo.py", "--config-file", str(config), "--weights", str(tmp_path / "evil.pkl"),
                      "--input", str(tmp_path / "data" / "images"), "--output", str(tmp_path / "o4")],
        "demo": ["demo/atss_demo.py", "--config-file", str(config), "--weights", str(tmp_path / "evil.pth"),
                 "--input", str(tmp_path / "data" / "images"), "--output", str(tmp_path / "o5")],
    }

    def run(args):
        return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(commands, pool.map(run, commands.values())))
    for name, result in results.items():
        assert result.returncode == 1, (name, result.stderr[-2000:])
        assert "error: refused to load" in result.stderr and "MODEL.TRUST_WEIGHT_FILE True" in result.stderr, name
    assert not marker.exists()


def _opcode_global(module, name):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _opcode_string(text):
    return b"X" + len(text).to_bytes(4, "little") + text


# numpy complains (unraisably) when it frees the half-built array: that is the point of refusing it
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_array_whose_dtype_declares_objects_is_refused(tmp_path):
    """Built from allowed globals only: numpy.dtype's pickled state can set the flag that says
    the array holds Python objects (which numpy would then treat as pointers)."""
    dtype = (_opcode_global("numpy", "dtype") + b"(" + _opcode_string(b"i8") + b"\x89\x88tR"
             + b"(K\x03" + _opcode_string(b"|") + b"NNNK\x08K\x08K\x09tb")  # flags 9: objects
    array = (_opcode_global("numpy.core.multiarray", "_reconstruct") + b"(" + _opcode_global("numpy", "ndarray")
             + b"(K\x00tC\x01btR(K\x01(K\x01t" + dtype + b"\x89C\x08" + b"A" * 8 + b"tb")
    payload = b"\x80\x03}" + _opcode_string(b"blobs") + b"}" + _opcode_string(b"conv1_w") + array + b"ss."
    (tmp_path / "objects.pkl").write_bytes(payload)
    cfg, model = tiny_model()
    with pytest.raises(UntrustedWeightsError, match="declares Python objects"):
        DetectronCheckpointer(cfg, model).load(str(tmp_path / "objects.pkl"))
