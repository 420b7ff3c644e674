import pytest

from atss_core.config import cfg as default_cfg
from atss_core.config.paths_catalog import DatasetCatalog
from atss_core.data.build import make_data_loader

from .test_coco_dataset import write_coco


def loader_cfg(tmp_path, **overrides):
    ann, root = write_coco(tmp_path)
    cfg = default_cfg.clone()
    name = "coco:{}:{}".format(root, ann)
    cfg.merge_from_list(["DATASETS.TRAIN", (name, name), "DATASETS.TEST", (name,), "SOLVER.IMS_PER_BATCH", 2,
                         "SOLVER.MAX_ITER", 5, "TEST.IMS_PER_BATCH", 2, "DATALOADER.NUM_WORKERS", 0,
                         "DATALOADER.SIZE_DIVISIBILITY", 32, "INPUT.MIN_SIZE_TRAIN", (60,),
                         "INPUT.MIN_SIZE_TEST", 60])
    for key, value in overrides.items():
        cfg.merge_from_list([key, value])
    return cfg


def test_training_loader_yields_max_iter_padded_batches_and_resumes(tmp_path):
    cfg = loader_cfg(tmp_path)
    batches = list(make_data_loader(cfg, is_train=True))
    assert len(batches) == 5
    for images, targets, indices in batches:
        assert images.tensors.shape[-2] % 32 == 0 and images.tensors.shape[-1] % 32 == 0
        assert len(targets) == len(indices) == images.tensors.shape[0] <= 2
        assert all(len(t) == 2 for t in targets)  # the one usable image, concatenated twice
    resumed = list(make_data_loader(cfg, is_train=True, start_iter=3))
    assert [b[2] for b in resumed] == [b[2] for b in batches[3:]]


def test_test_loader_visits_every_image_once_in_order(tmp_path):
    (loader,) = make_data_loader(loader_cfg(tmp_path), is_train=False)
    indices = [i for _, _, batch_indices in loader for i in batch_indices]
    assert indices == [0, 1, 2]


def test_dataset_names_resolve_or_fail_clearly(monkeypatch):
    monkeypatch.setenv("ATSS_DATA_DIR", "/data")
    entry = DatasetCatalog.get("coco_2014_minival")
    assert entry == {"factory": "COCODataset", "args": {"root": "/data/coco/val2014",
                                                        "ann_file": "/data/coco/annotations/instances_minival2014.json"}}
    assert DatasetCatalog.get("voc_2007_test")["args"] == {"data_dir": "/data/voc/VOC2007", "split": "test"}
    with pytest.raises(KeyError, match="unknown dataset 'coco_2099'"):
        DatasetCatalog.get("coco_2099")
    with pytest.raises(ValueError, match="expected coco:<image folder>:<annotation json>"):
        DatasetCatalog.get("coco:/only/one")
