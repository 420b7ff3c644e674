import json

import cv2
import numpy as np
import pytest
import torch

from atss_core.data.datasets import COCODataset


def write_coco(tmp_path, corrupt=False):
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    records = []
    for i, (w, h) in enumerate([(40, 30), (50, 20), (30, 30)]):
        name = "img{}.jpg".format(i)
        cv2.imwrite(str(images_dir / name), np.full((h, w, 3), 40 * i, dtype=np.uint8))
        records.append({"id": 10 + i, "file_name": name, "width": w, "height": h})
    if corrupt:
        (images_dir / "img2.jpg").write_bytes(b"garbage")
    annotations = [
        {"id": 1, "image_id": 10, "category_id": 7, "bbox": [2, 3, 10, 5], "iscrowd": 0, "area": 50},
        {"id": 2, "image_id": 10, "category_id": 3, "bbox": [20, 10, 15, 15], "iscrowd": 0, "area": 225},
        {"id": 3, "image_id": 10, "category_id": 7, "bbox": [0, 0, 40, 30], "iscrowd": 1, "area": 1200},
        {"id": 4, "image_id": 11, "category_id": 3, "bbox": [5, 5, 1, 1], "iscrowd": 0, "area": 1},
    ]  # image 12 has no annotation; image 11 has only a degenerate box
    categories = [{"id": 3, "name": "cat"}, {"id": 7, "name": "dog"}]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": records, "annotations": annotations, "categories": categories}))
    return str(path), str(images_dir)


def test_training_dataset_filters_images_and_maps_categories(tmp_path):
    ann, root = write_coco(tmp_path)
    dataset = COCODataset(ann, root, remove_images_without_annotations=True)
    assert len(dataset) == 1 and dataset.get_img_info(0)["id"] == 10
    assert dataset.json_category_id_to_contiguous_id == {3: 1, 7: 2}
    assert dataset.contiguous_category_id_to_json_id == {1: 3, 2: 7}
    image, target, index = dataset[0]
    assert image.shape == (30, 40, 3) and image.dtype == np.uint8 and index == 0
    # crowd box dropped; xywh -> xyxy with the +1 convention (x2 = x + w - 1)
    assert target.bbox.tolist() == [[2.0, 3.0, 11.0, 7.0], [20.0, 10.0, 34.0, 24.0]]
    assert target.get_field("labels").tolist() == [2, 1] and target.size == (40, 30)


def test_test_dataset_keeps_every_image(tmp_path):
    ann, root = write_coco(tmp_path)
    dataset = COCODataset(ann, root, remove_images_without_annotations=False)
    assert [dataset.get_img_info(i)["id"] for i in range(len(dataset))] == [10, 11, 12]
    _, target, _ = dataset[2]
    assert len(target) == 0 and target.get_field("labels").dtype == torch.int64


def test_missing_and_corrupt_files_are_named(tmp_path):
    ann, root = write_coco(tmp_path, corrupt=True)
    with pytest.raises(FileNotFoundError, match="COCO annotation file not found"):
        COCODataset(str(tmp_path / "missing.json"), root, False)
    dataset = COCODataset(ann, root, remove_images_without_annotations=False)
    with pytest.raises(ValueError, match="could not decode image .*img2.jpg"):
        dataset[2]


def test_real_raccoon_photographs_load_through_the_transforms():
    from atss_core.config import cfg as default_cfg
    from atss_core.data.transforms import build_transforms

    from ..conftest import shared_path

    ann = shared_path("data", "raccoon", "annotations", "instances_val.json")
    root = shared_path("data", "raccoon", "JPEGImages")
    cfg = default_cfg.clone()
    cfg.merge_from_list(["INPUT.MIN_SIZE_TEST", 200, "INPUT.MAX_SIZE_TEST", 333])
    dataset = COCODataset(ann, root, remove_images_without_annotations=True,
                          transforms=build_transforms(cfg, is_train=False))
    assert len(dataset) == 40 and dataset.categories == {1: "raccoon"}
    boxes = 0
    for index in range(0, 40, 7):
        image, target, _ = dataset[index]
        info = dataset.get_img_info(index)
        assert image.shape[0] == 3 and (min(image.shape[1:]) == 200 or max(image.shape[1:]) == 333)
        assert target.size == (image.shape[2], image.shape[1]) and len(target) >= 1
        assert (target.get_field("labels") == 1).all()
        # the boxes follow the image: the annotation's xywh (+1 convention) scaled per axis
        anns = [a for a in dataset.coco.loadAnns(dataset.coco.getAnnIds(imgIds=info["id"])) if not a["iscrowd"]]
        sx, sy = image.shape[2] / info["width"], image.shape[1] / info["height"]
        expected = torch.tensor([[x * sx, y * sy, (x + w - 1) * sx, (y + h - 1) * sy] for x, y, w, h in
                                 (a["bbox"] for a in anns)])
        torch.testing.assert_close(target.bbox, expected, rtol=0, atol=1e-3)
        boxes += len(target)
    assert boxes >= 6
