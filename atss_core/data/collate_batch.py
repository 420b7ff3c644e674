"""Collates (image, target, index) samples: a padded ImageList batch, or the raw images for
test-time augmentation."""
from atss_core.structures.image_list import to_image_list


class BatchCollator:
    """Pads the images to a common size rounded up to ``size_divisible`` (DATALOADER.SIZE_DIVISIBILITY)."""

    def __init__(self, size_divisible=0):
        self.size_divisible = size_divisible

    def __call__(self, batch):
        images, targets, indices = zip(*batch)
        return to_image_list(list(images), self.size_divisible), targets, indices


class BBoxAugCollator:
    """Keeps the untransformed images as a list: test-time augmentation transforms them itself."""

    def __call__(self, batch):
        images, targets, indices = zip(*batch)
        return list(images), targets, indices
