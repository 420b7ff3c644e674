"""The class names weights files record: ours, mmdetection 2.x and 3.x."""
import torch

from atss_core.utils.checkpoint import Checkpointer
from atss_core.weights.class_names import recorded_class_names


def test_the_three_places_class_names_are_recorded():
    assert recorded_class_names({"class_names": ["__background__", "raccoon"]}) == ["__background__", "raccoon"]
    assert recorded_class_names({"meta": {"CLASSES": ("cat", "dog")}}) == ["__background__", "cat", "dog"]
    assert recorded_class_names({"meta": {"dataset_meta": {"classes": ("cat",), "palette": [(1, 2, 3)]}}}) == [
        "__background__", "cat"]
    for nothing in ({"model": {}}, {"meta": {"CLASSES": None}}, {"class_names": [1, 2]}, [], None):
        assert recorded_class_names(nothing) is None


def test_a_loaded_checkpoint_exposes_its_class_names(tmp_path):
    model = torch.nn.Linear(2, 2)
    torch.save({"model": model.state_dict(), "class_names": ["__background__", "a"]}, tmp_path / "w.pth")
    checkpointer = Checkpointer(model)
    checkpointer.load(str(tmp_path / "w.pth"), use_latest=False)
    assert checkpointer.class_names == ["__background__", "a"]
    torch.save({"model": model.state_dict()}, tmp_path / "plain.pth")
    checkpointer.load(str(tmp_path / "plain.pth"), use_latest=False)
    assert checkpointer.class_names is None


def test_an_mmdetection_checkpoints_names_survive_its_conversion(tmp_path):
    from atss_core.weights.reader import read_weights
    from tests.golden.test_mmdet_outputs import CHECKPOINT

    checkpoint = torch.load(CHECKPOINT, weights_only=True)
    names = tuple("class{}".format(k) for k in range(80))
    torch.save(dict(checkpoint, meta={"dataset_meta": {"classes": names}}), tmp_path / "mmdet3.pth")
    torch.save(dict(checkpoint, meta={"CLASSES": names}), tmp_path / "mmdet2.pth")
    for name in ("mmdet3.pth", "mmdet2.pth"):
        read = read_weights(str(tmp_path / name))
        assert read["class_names"] == ["__background__"] + list(names)
        assert "rpn.head.cls_logits.weight" in read["model"]
