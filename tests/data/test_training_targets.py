"""What training is given beyond the official objects: background images
(DATALOADER.FILTER_EMPTY_ANNOTATIONS False) and ignore regions (MODEL.ATSS.IGNORE_CROWD) from
COCO crowds and VOC difficult objects; evaluation data is unchanged."""
import logging

import torch

from atss_core.data.build import build_dataset, make_data_loader
from atss_core.data.datasets import COCODataset, PascalVOCDataset
from atss_core.structures.boxlist_ops import split_ignore_regions

from .test_build import loader_cfg
from .test_coco_dataset import write_coco
from .test_voc import write_voc


def test_background_images_are_kept_counted_and_batched(tmp_path, caplog):
    cfg = loader_cfg(tmp_path, **{"DATALOADER.FILTER_EMPTY_ANNOTATIONS": False, "SOLVER.MAX_ITER": 6,
                                  "DATASETS.TRAIN": "('coco:{}:{}',)".format(tmp_path / "images",
                                                                              tmp_path / "ann.json")})
    with caplog.at_level(logging.INFO, logger="atss_core.data.build"):
        loader = make_data_loader(cfg, is_train=True)
    assert len(loader.dataset) == 3  # the official filter keeps 1 of the 3 images
    assert "2 of 3 training images have no object and train as background images" in caplog.text
    sizes = [len(t) for _, targets, _ in loader for t in targets]
    assert 0 in sizes and 2 in sizes
    official = cfg.clone()
    official.merge_from_list(["DATALOADER.FILTER_EMPTY_ANNOTATIONS", True])
    assert len(make_data_loader(official, is_train=True).dataset) == 1


def test_coco_crowds_become_ignore_regions_only_when_asked(tmp_path):
    ann, root = write_coco(tmp_path)
    plain = COCODataset(ann, root, remove_images_without_annotations=True)
    _, target, _ = plain[0]
    assert len(target) == 2 and not target.has_field("ignore")
    with_crowd = COCODataset(ann, root, remove_images_without_annotations=True, ignore_regions=True)
    _, target, _ = with_crowd[0]
    objects, regions = split_ignore_regions(target)
    assert torch.equal(objects.bbox, plain[0][1].bbox) and objects.get_field("labels").tolist() == [2, 1]
    assert regions.bbox.tolist() == [[0.0, 0.0, 39.0, 29.0]] and regions.get_field("labels").tolist() == [0]
    assert len(with_crowd.get_groundtruth(0)) == 2  # what evaluation reads is unchanged


def test_voc_difficult_objects_become_ignore_regions_unless_use_difficult(tmp_path):
    write_voc(tmp_path, {"a": (50, 40, [("dog", False, (1, 1, 10, 20)), ("cat", True, (5, 5, 30, 30))]),
                         "b": (30, 30, [("cat", True, (2, 3, 20, 25))])})
    dataset = PascalVOCDataset(str(tmp_path), "test", ignore_regions=True)
    objects, regions = split_ignore_regions(dataset[0][1])
    assert len(objects) == 1 and regions.bbox.tolist() == [[4.0, 4.0, 29.0, 29.0]]
    objects, regions = split_ignore_regions(dataset[1][1])
    assert len(objects) == 0 and len(regions) == 1  # a background image with an ignore region
    kept = PascalVOCDataset(str(tmp_path), "test", use_difficult=True, ignore_regions=True)
    objects, regions = split_ignore_regions(kept[0][1])
    assert len(objects) == 2 and regions is None  # nothing is left out, so nothing to ignore


def test_test_datasets_never_carry_ignore_regions(tmp_path):
    ann, root = write_coco(tmp_path)
    (dataset,) = build_dataset(["coco:{}:{}".format(root, ann)], None, is_train=False, ignore_regions=True)
    assert not dataset[0][1].has_field("ignore")
