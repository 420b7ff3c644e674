import random

import numpy as np
import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.data.transforms import Normalize, RandomHorizontalFlip, Resize, build_transforms
from atss_core.structures import BoxList


def image_and_target(w=200, h=100):
    image = np.zeros((h, w, 3), dtype=np.uint8)
    image[10:30, 20:60] = (255, 0, 0)  # a blue (BGR) block
    target = BoxList(torch.tensor([[20.0, 10.0, 59.0, 29.0]]), (w, h))
    target.add_field("labels", torch.tensor([1]))
    return image, target


@pytest.mark.parametrize("size,min_size,max_size,expected", [
    ((200, 100), 800, 1333, (666, 1332)),  # capped: round(1333 * 100 / 200) = 666 (half to even), 2 * 666
    ((100, 200), 50, 1333, (100, 50)),
    ((640, 480), 800, 1333, (800, 1066)),
    ((480, 640), 480, 1333, (640, 480)),  # already the right size
])
def test_resize_sizes(size, min_size, max_size, expected):
    assert Resize(min_size, max_size).get_size(size) == expected


def test_resize_and_flip_move_the_boxes_with_the_image():
    image, target = image_and_target()
    image, target = Resize(50, 1000)(image, target)
    assert image.shape[:2] == (50, 100) and target.size == (100, 50)
    assert target.bbox.tolist() == [[10.0, 5.0, 29.5, 14.5]]
    flipped, flipped_target = RandomHorizontalFlip(1.0)(image, target)
    assert np.array_equal(flipped, image[:, ::-1])
    assert flipped_target.bbox.tolist() == [[100 - 29.5 - 1, 5.0, 100 - 10 - 1, 14.5]]
    same, same_target = RandomHorizontalFlip(0.0)(image, target)
    assert same is image and same_target is target


def test_normalize_bgr255_and_rgb01():
    image = torch.tensor([[[10.0]], [[20.0]], [[30.0]]])  # B, G, R
    bgr, _ = Normalize([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], to_bgr255=True)(image)
    assert bgr.flatten().tolist() == [9.0, 18.0, 27.0]
    rgb, _ = Normalize([0.0, 0.0, 0.0], [0.5, 0.5, 0.5], to_bgr255=False)(image)
    assert rgb.flatten().tolist() == pytest.approx([30 / 255 / 0.5, 20 / 255 / 0.5, 10 / 255 / 0.5])


def test_build_transforms_train_and_test():
    random.seed(0)
    cfg = default_cfg.clone()
    cfg.merge_from_list(["INPUT.MIN_SIZE_RANGE_TRAIN", (60, 70), "INPUT.MAX_SIZE_TRAIN", 1000])
    image, target = image_and_target()
    tensor, out_target = build_transforms(cfg, is_train=True)(image, target)
    assert tensor.dtype == torch.float32 and tensor.shape[0] == 3 and 60 <= tensor.shape[1] <= 70
    assert out_target.size == (tensor.shape[2], tensor.shape[1])
    cfg.merge_from_list(["INPUT.MIN_SIZE_TEST", 50])
    tensor, none = build_transforms(cfg, is_train=False)(image, None)
    assert none is None and tuple(tensor.shape) == (3, 50, 100)
    # BGR 0..255 minus the pixel mean: the blue block's B channel is 255 - 102.9801
    assert tensor[0, 10, 15].item() == pytest.approx(255 - 102.9801, abs=1e-3)
    cfg.merge_from_list(["INPUT.MIN_SIZE_RANGE_TRAIN", (70, 60)])
    with pytest.raises(ValueError, match="MIN_SIZE_RANGE_TRAIN"):
        build_transforms(cfg, is_train=True)


def test_training_flips_half_of_the_images_and_testing_none():
    cfg = default_cfg.clone()
    cfg.merge_from_list(["INPUT.MIN_SIZE_TRAIN", (100,), "INPUT.MAX_SIZE_TRAIN", 400, "INPUT.MIN_SIZE_TEST", 100])
    random.seed(0)
    train, test = build_transforms(cfg, is_train=True), build_transforms(cfg, is_train=False)
    flips = {"train": 0, "test": 0}
    for _ in range(200):
        for name, transform in (("train", train), ("test", test)):
            _, target = transform(*image_and_target())
            flips[name] += int(target.bbox[0, 0].item() != 20.0)  # x1 moves only when flipped
    assert 70 < flips["train"] < 130 and flips["test"] == 0  # binomial(200, 0.5): 100 +- 30 is 4 sigma


def test_training_size_range_includes_both_ends():
    cfg = default_cfg.clone()
    cfg.merge_from_list(["INPUT.MIN_SIZE_RANGE_TRAIN", (100, 102), "INPUT.MAX_SIZE_TRAIN", 1000])
    random.seed(0)
    transform = build_transforms(cfg, is_train=True)
    heights = {transform(*image_and_target(w=300, h=150))[0].shape[1] for _ in range(60)}
    assert heights == {100, 101, 102}
