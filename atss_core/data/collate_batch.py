"""Collates (image, target, index) samples into a padded ImageList batch."""
from atss_core.structures.image_list import to_image_list


class BatchCollator:
    """Pads the images to a common size rounded up to ``size_divisible`` (DATALOADER.SIZE_DIVISIBILITY)."""

    def __init__(self, size_divisible=0):
        self.size_divisible = size_divisible

    def __call__(self, batch):
        images, targets, indices = zip(*batch)
        return to_image_list(list(images), self.size_divisible), targets, indices
