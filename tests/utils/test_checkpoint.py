import logging
import os
import pickle
import re

import numpy as np
import pytest
import torch

from atss_core.modeling.detector import build_detection_model
from atss_core.utils.c2_model_loading import rename_c2_resnet_weights
from atss_core.utils.checkpoint import DetectronCheckpointer
from atss_core.weights.download import OfflineError

from ..modeling.test_training import tiny_cfg


def tiny_model(num_classes=3, seed=0):
    torch.manual_seed(seed)
    cfg = tiny_cfg()
    cfg.merge_from_list(["MODEL.ATSS.NUM_CLASSES", num_classes])
    return cfg, build_detection_model(cfg)


def assert_same_weights(a, b, skip=()):
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb
        if not any(s in ka for s in skip):
            assert torch.equal(va, vb), ka


def test_a_failed_save_leaves_the_last_checkpoint_and_no_temporary_file(tmp_path, monkeypatch):
    from atss_core.utils import checkpoint

    cfg, model = tiny_model()
    saver = DetectronCheckpointer(cfg, model, save_dir=str(tmp_path), save_to_disk=True)
    first = saver.save("model_0000001")
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(checkpoint.os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    saver.save("model_0000002")
    assert len(synced) == 4  # each file (checkpoint, last_checkpoint) and the folder after each rename

    def disk_full(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint.torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        saver.save("model_0000003")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000001.pth", "model_0000002.pth"]
    assert saver.get_checkpoint_file() == str(tmp_path / "model_0000002.pth") and os.path.exists(first)


def _fsync_refusing_folders(error_number):
    import stat

    real_fsync = os.fsync

    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(error_number, os.strerror(error_number))
        real_fsync(fd)

    return fsync


def test_a_filesystem_that_refuses_to_sync_folders_still_saves(tmp_path, monkeypatch, caplog):
    import errno

    from atss_core.utils import checkpoint

    cfg, model = tiny_model()
    saver = DetectronCheckpointer(cfg, model, save_dir=str(tmp_path), save_to_disk=True)
    monkeypatch.setattr(checkpoint.os, "fsync", _fsync_refusing_folders(errno.EINVAL))  # FUSE, CIFS
    with caplog.at_level(logging.WARNING, logger="atss_core.utils.checkpoint"):
        path = saver.save("model_0000001")
        saver.save("model_0000002")
    assert saver.get_checkpoint_file() == path.replace("1.pth", "2.pth") and os.path.getsize(path) > 0
    warnings = [r.getMessage() for r in caplog.records if "does not sync folders" in r.getMessage()]
    assert len(warnings) == 1 and str(tmp_path) in warnings[0]  # once per folder
    monkeypatch.setattr(checkpoint.os, "fsync", _fsync_refusing_folders(errno.EIO))  # a real disk error
    with pytest.raises(OSError, match="Input/output error"):
        saver.save("model_0000003")


def test_a_failed_cleanup_does_not_hide_why_the_save_failed(tmp_path, monkeypatch):
    from atss_core.utils import checkpoint

    cfg, model = tiny_model()

    def disk_full(obj, f, *args, **kwargs):
        raise OSError(28, "No space left on device")

    def read_only(path):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(checkpoint.torch, "save", disk_full)
    monkeypatch.setattr(checkpoint.os, "remove", read_only)
    with pytest.raises(OSError, match="No space left"):
        DetectronCheckpointer(cfg, model, save_dir=str(tmp_path), save_to_disk=True).save("model_0000001")


def test_a_training_run_removes_the_temporary_files_a_killed_save_left(tmp_path):
    cfg, model = tiny_model()
    (tmp_path / "model_0000005.pth.tmp").write_bytes(b"half")
    (tmp_path / "last_checkpoint.tmp").write_text("model_0000005.pth")
    (tmp_path / "notes.tmp").write_text("not ours")
    DetectronCheckpointer(cfg, model, save_dir=str(tmp_path), save_to_disk=False).remove_stale_temporaries()
    assert len(list(tmp_path.iterdir())) == 3  # only the process that saves may remove them
    DetectronCheckpointer(cfg, model, save_dir=str(tmp_path), save_to_disk=True).remove_stale_temporaries()
    assert [p.name for p in tmp_path.iterdir()] == ["notes.tmp"]


def test_save_and_resume_restore_everything(tmp_path):
    cfg, model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1)
    model(*_one_batch()).__getitem__("loss_cls").backward()
    optimizer.step()
    scheduler.step()
    saver = DetectronCheckpointer(cfg, model, optimizer, scheduler, save_dir=str(tmp_path), save_to_disk=True)
    path = saver.save("model_0000007", iteration=7)
    assert os.path.exists(path) and not any(p.suffix == ".tmp" for p in tmp_path.iterdir())
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000007.pth"

    _, fresh = tiny_model(seed=1)
    fresh_opt = torch.optim.SGD(fresh.parameters(), lr=0.1, momentum=0.9)
    fresh_sched = torch.optim.lr_scheduler.StepLR(fresh_opt, step_size=1)
    extra = DetectronCheckpointer(cfg, fresh, fresh_opt, fresh_sched, save_dir=str(tmp_path), save_to_disk=True).load("ignored.pth")
    assert extra["iteration"] == 7
    assert_same_weights(model, fresh)
    assert fresh_sched.last_epoch == 1 and fresh_opt.state_dict()["state"].keys() == optimizer.state_dict()["state"].keys()
    # the momentum buffers themselves, and the learning rates
    for key, state in optimizer.state_dict()["state"].items():
        assert torch.equal(fresh_opt.state_dict()["state"][key]["momentum_buffer"], state["momentum_buffer"])
    assert [g["lr"] for g in fresh_opt.param_groups] == [g["lr"] for g in optimizer.param_groups]


def _one_batch():
    from ..modeling.test_training import synthetic_batch

    images, targets = synthetic_batch(n=2)
    return images, targets


def test_weights_file_never_brings_optimizer_or_iteration(tmp_path):
    cfg, model = tiny_model()
    torch.save({"model": model.state_dict(), "optimizer": {"state": {}}, "iteration": 90000}, tmp_path / "w.pth")
    _, other = tiny_model(seed=3)
    extra = DetectronCheckpointer(cfg, other, save_dir=str(tmp_path / "out"), save_to_disk=True).load(str(tmp_path / "w.pth"))
    assert extra == {}
    assert_same_weights(model, other)


def test_module_prefix_and_bare_state_dicts_load(tmp_path):
    cfg, model = tiny_model()
    prefixed = {"module." + k: v for k, v in model.state_dict().items()}
    torch.save(prefixed, tmp_path / "bare.pth")
    _, other = tiny_model(seed=4)
    DetectronCheckpointer(cfg, other).load(str(tmp_path / "bare.pth"))
    assert_same_weights(model, other)


def test_class_count_mismatch_is_reported_by_name(tmp_path, caplog):
    cfg81, coco_model = tiny_model(num_classes=81)
    torch.save({"model": coco_model.state_dict()}, tmp_path / "coco.pth")
    cfg3, model3 = tiny_model(num_classes=3, seed=5)
    with caplog.at_level(logging.WARNING):
        DetectronCheckpointer(cfg3, model3).load(str(tmp_path / "coco.pth"))
    assert "rpn.head.cls_logits.weight model (2, 32, 3, 3) vs checkpoint (80, 32, 3, 3)" in caplog.text
    assert_same_weights(coco_model, model3, skip=("cls_logits",))


def to_c2_name(key):
    """Our ResNet body name -> the Caffe2 blob name (the inverse of the official rules)."""
    key = key.replace("weight", "w").replace("bias", "b")
    if key.startswith("stem.conv1."):
        return "conv1_" + key.split(".")[-1]
    if key.startswith("stem.bn1."):
        return "res_conv1_bn_" + {"w": "s", "b": "b"}[key.split(".")[-1]]
    m = re.match(r"layer(\d)\.(\d+)\.(\w+)\.(?:(\d)\.)?(\w+)$", key)
    stage, block, module, sub, param = m.groups()
    prefix = "res{}_{}_".format(int(stage) + 1, block)
    if module == "downsample":
        return prefix + ("branch1_" + param if sub == "0" else "branch1_bn_" + {"w": "s", "b": "b"}[param])
    branch = {"1": "2a", "2": "2b", "3": "2c"}[module[-1]]
    if module.startswith("conv"):
        return prefix + "branch{}_{}".format(branch, param)
    return prefix + "branch{}_bn_{}".format(branch, {"w": "s", "b": "b"}[param])


def test_c2_names_convert_to_our_body_names():
    names = ["conv1_w", "res_conv1_bn_s", "res_conv1_bn_b", "res2_0_branch1_w", "res2_0_branch1_bn_s",
             "res2_0_branch2a_w", "res2_0_branch2a_bn_b", "res3_3_branch2b_w", "res5_2_branch2c_bn_s"]
    assert rename_c2_resnet_weights(names) == [
        "stem.conv1.weight", "stem.bn1.weight", "stem.bn1.bias", "layer1.0.downsample.0.weight",
        "layer1.0.downsample.1.weight", "layer1.0.conv1.weight", "layer1.0.bn1.bias", "layer2.3.conv2.weight",
        "layer4.2.bn3.weight"]
    # Detectron's GroupNorm models (R-50-GN): the stem's norm is conv1_gn_{s,b}
    gn_names = ["conv1_gn_s", "conv1_gn_b", "res2_0_branch2a_gn_s", "res2_0_branch1_gn_b", "res3_1_branch2c_gn_b"]
    assert rename_c2_resnet_weights(gn_names) == [
        "stem.bn1.weight", "stem.bn1.bias", "layer1.0.bn1.weight", "layer1.0.downsample.1.bias", "layer2.1.bn3.bias"]


def test_c2_pickle_loads_into_the_body(tmp_path):
    cfg, model = tiny_model()
    cfg.merge_from_list(["MODEL.RESNETS.STEM_FUNC", "StemWithFixedBatchNorm",
                         "MODEL.RESNETS.TRANS_FUNC", "BottleneckWithFixedBatchNorm"])
    model = build_detection_model(cfg)
    blobs = {}
    expected = {}
    for key, value in model.backbone.body.state_dict().items():
        if "running_" in key:
            continue  # Caffe2 folds the statistics into scale and bias
        blobs[to_c2_name(key)] = np.random.rand(*value.shape).astype(np.float32)
        expected["backbone.body." + key] = blobs[to_c2_name(key)]
    blobs["fc1000_w"] = np.zeros((1000, 4), dtype=np.float32)
    with open(tmp_path / "R-50.pkl", "wb") as f:
        pickle.dump({"blobs": blobs}, f)
    report_model = build_detection_model(cfg)
    DetectronCheckpointer(cfg, report_model).load(str(tmp_path / "R-50.pkl"))
    state = report_model.state_dict()
    for key, value in expected.items():
        assert np.array_equal(state[key].numpy(), value), key


def test_missing_files_are_clear_errors(tmp_path, monkeypatch):
    cfg, model = tiny_model()
    with pytest.raises(FileNotFoundError, match="checkpoint/weights file not found"):
        DetectronCheckpointer(cfg, model).load(str(tmp_path / "nope.pth"))
    monkeypatch.setenv("ATSS_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("ATSS_OFFLINE", "1")
    with pytest.raises(OfflineError, match=r"put the file at {}".format(re.escape(str(
            tmp_path / "ImageNetPretrained" / "MSRA" / "R-50.pkl")))):
        DetectronCheckpointer(cfg, model).load("catalog://ImageNetPretrained/MSRA/R-50")
    # the download address is the official catalog's, which is not always the catalog name
    with pytest.raises(OfflineError, match=r"cannot download https://dl.fbaipublicfiles.com/detectron/"
                                           r"ImageNetPretrained/FBResNeXt/X-101-64x4d\.pkl"):
        DetectronCheckpointer(cfg, model).load("catalog://ImageNetPretrained/FAIR/20171220/X-101-64x4d")
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="could not read checkpoint"):
        DetectronCheckpointer(cfg, model).load(str(tmp_path / "broken.pth"))


def test_keys_match_by_the_longest_suffix_on_a_dot_boundary():
    from atss_core.utils.model_serialization import align_and_update_state_dicts

    model = {"backbone.body.layer1.0.conv1.weight": torch.zeros(1), "rpn.head.ab.bias": torch.zeros(1),
             "rpn.head.b.bias": torch.zeros(1)}
    loaded = {"conv1.weight": torch.full((1,), 1.0), "layer1.0.conv1.weight": torch.full((1,), 2.0),
              "b.bias": torch.full((1,), 3.0)}
    report = align_and_update_state_dicts(model, loaded)
    assert model["backbone.body.layer1.0.conv1.weight"].item() == 2.0  # the longer suffix wins
    assert model["rpn.head.b.bias"].item() == 3.0
    assert model["rpn.head.ab.bias"].item() == 0.0  # "ab.bias" does not end with ".b.bias"
    assert report["missing"] == ["rpn.head.ab.bias"] and report["unexpected"] == ["conv1.weight"]


def test_c2_weights_of_deformable_stages_go_to_conv2_conv(tmp_path):
    from atss_core.config import cfg as default_cfg
    from atss_core.utils.c2_model_loading import load_c2_format

    blobs = {"res3_0_branch2b_w": np.ones((4, 4, 3, 3), dtype=np.float32),
             "res2_0_branch2b_w": np.ones((4, 4, 3, 3), dtype=np.float32)}
    with open(tmp_path / "w.pkl", "wb") as f:
        pickle.dump({"blobs": blobs}, f)
    cfg = default_cfg.clone()
    cfg.merge_from_list(["MODEL.RESNETS.STAGE_WITH_DCN", (False, True, True, True)])
    state = load_c2_format(cfg, str(tmp_path / "w.pkl"))["model"]  # the official return: {"model": ...}
    # stage 3 (layer2) is deformable: its 3x3 weights live in conv2.conv; stage 2 keeps conv2
    assert sorted(state) == ["layer1.0.conv2.weight", "layer2.0.conv2.conv.weight"]
    assert all(torch.equal(v, torch.ones(4, 4, 3, 3)) for v in state.values())


def test_official_checkpointer_takes_the_model_first_and_saves_only_when_asked(tmp_path):
    from torch import nn

    from atss_core.utils.checkpoint import Checkpointer

    trained = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    assert Checkpointer(trained, save_dir=str(tmp_path)).save("not_saved") is None  # save_to_disk None: no file
    assert not os.listdir(tmp_path)
    Checkpointer(nn.DataParallel(trained), save_dir=str(tmp_path), save_to_disk=True).save("model_a")
    fresh = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    resumed = Checkpointer(fresh, save_dir=str(tmp_path))
    assert resumed.get_checkpoint_file() == os.path.join(str(tmp_path), "model_a.pth")
    resumed.load()
    assert all(torch.equal(a, b) for a, b in zip(trained.state_dict().values(), fresh.state_dict().values()))
    assert Checkpointer(fresh, save_dir=str(tmp_path / "empty")).get_checkpoint_file() == ""


def test_utils_env_runs_the_file_the_variable_names(tmp_path, monkeypatch):
    from atss_core.utils import env

    marker = tmp_path / "ran.txt"
    script = tmp_path / "site_env.py"
    script.write_text("def setup_environment():\n    open({!r}, 'w').write('yes')\n".format(str(marker)))
    monkeypatch.setenv(env.ENV_MODULE_VARIABLE, str(script))
    env.setup_environment()
    assert marker.read_text() == "yes"
    script.write_text("x = 1\n")
    with pytest.raises(AttributeError, match="has no setup_environment"):
        env.setup_environment()
    monkeypatch.setenv(env.ENV_MODULE_VARIABLE, str(tmp_path / "missing.py"))
    with pytest.raises(FileNotFoundError, match="TORCH_DETECTRON_ENV_MODULE names"):
        env.setup_environment()
