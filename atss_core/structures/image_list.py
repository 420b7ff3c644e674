"""ImageList: a batch of images of different sizes padded into one tensor."""
import math

import torch


class ImageList:
    """``tensors`` [N, C, H, W] (zero-padded) plus each image's real (height, width) in ``image_sizes``."""

    def __init__(self, tensors, image_sizes):
        self.tensors = tensors
        self.image_sizes = image_sizes

    def to(self, *args, **kwargs):
        return ImageList(self.tensors.to(*args, **kwargs), self.image_sizes)


def to_image_list(tensors, size_divisible=0):
    """Batches a tensor, an ImageList or a list of [C, H, W] tensors into an ImageList.

    The padded height and width are rounded up to a multiple of ``size_divisible`` (when > 0),
    as the FPN's strides need.
    """
    if isinstance(tensors, torch.Tensor) and size_divisible > 0:
        tensors = [tensors] if tensors.dim() == 3 else list(tensors.unbind(0))
    if isinstance(tensors, ImageList):
        return tensors
    if isinstance(tensors, torch.Tensor):
        if tensors.dim() == 3:
            tensors = tensors[None]
        if tensors.dim() != 4:
            raise ValueError("to_image_list: expected a [C, H, W] or [N, C, H, W] tensor, got shape {}".format(
                tuple(tensors.shape)))
        image_sizes = [tuple(t.shape[-2:]) for t in tensors]
        return ImageList(tensors, image_sizes)
    if isinstance(tensors, (tuple, list)):
        if not tensors:
            raise ValueError("to_image_list: got an empty list of images")
        for t in tensors:
            if not isinstance(t, torch.Tensor) or t.dim() != 3:
                raise ValueError("to_image_list: every image must be a [C, H, W] tensor, got {}".format(
                    tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__))
        max_size = [max(s) for s in zip(*[t.shape for t in tensors])]
        if size_divisible > 0:
            stride = size_divisible
            max_size[1] = int(math.ceil(max_size[1] / stride) * stride)
            max_size[2] = int(math.ceil(max_size[2] / stride) * stride)
        batched = tensors[0].new_zeros((len(tensors), *max_size))
        for img, pad_img in zip(tensors, batched):
            pad_img[: img.shape[0], : img.shape[1], : img.shape[2]].copy_(img)
        image_sizes = [tuple(t.shape[-2:]) for t in tensors]
        return ImageList(batched, image_sizes)
    raise TypeError("to_image_list: unsupported type {}".format(type(tensors).__name__))
