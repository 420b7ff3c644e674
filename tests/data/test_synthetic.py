import hashlib
import json
import os

import numpy as np

from atss_core.data.datasets import COCODataset
from atss_core.data.synthetic import CLASSES, make_synthetic_dataset, render_image


def digest(folder):
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            with open(os.path.join(root, name), "rb") as f:
                h.update(name.encode() + f.read())
    return h.hexdigest()


def test_same_seed_gives_byte_identical_files(tmp_path):
    make_synthetic_dataset(str(tmp_path / "a"), seed=3, num_train=6, num_val=3, size=64)
    make_synthetic_dataset(str(tmp_path / "b"), seed=3, num_train=6, num_val=3, size=64)
    make_synthetic_dataset(str(tmp_path / "c"), seed=4, num_train=6, num_val=3, size=64)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_dataset_content_is_varied_and_loadable(tmp_path):
    train_json, _ = make_synthetic_dataset(str(tmp_path), seed=0, num_train=60, num_val=5)
    data = json.loads(open(train_json).read())
    labels = {a["category_id"] for a in data["annotations"]}
    assert labels == set(range(1, len(CLASSES) + 1))
    sides = [max(a["bbox"][2:]) for a in data["annotations"]]
    assert min(sides) < 20 and max(sides) > 60  # small and large objects
    annotated = {a["image_id"] for a in data["annotations"]}
    assert len(annotated) < len(data["images"])  # some images without objects
    dataset = COCODataset(train_json, str(tmp_path / "train"), remove_images_without_annotations=True)
    image, target, _ = dataset[0]
    assert image.shape == (128, 128, 3) and len(target) >= 1


def test_boxes_are_tight_around_the_visible_object():
    rng = np.random.RandomState(5)
    for _ in range(20):
        image, objects = render_image(rng, size=96)
        for _, (x0, y0, x1, y1) in objects:
            assert 0 <= x0 <= x1 < 96 and 0 <= y0 <= y1 < 96
