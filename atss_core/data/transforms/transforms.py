"""Training / test transforms on (image, target) pairs.

Images are decoded by OpenCV: HxWx3 uint8 numpy arrays in BGR order. Targets are BoxLists
(or None at test time) and follow every geometric change of the image. Resizing uses Pillow's
bilinear filter, as the official pipeline (torchvision on PIL images) does: it antialiases
when shrinking, which OpenCV's INTER_LINEAR does not (up to 54 grey levels apart on the
shipped photographs; tools/dev/compare_preprocessing.py). INPUT.RESIZE_STYLE "mmdet" uses
OpenCV's instead, as mmdetection does.
"""
import random

import cv2
import numpy as np
import torch
from PIL import Image

from atss_core.structures.bounding_box import FLIP_LEFT_RIGHT


def image_size(image):
    """(width, height) of an HxWxC array or a CxHxW tensor."""
    if isinstance(image, torch.Tensor):
        return image.shape[-1], image.shape[-2]
    return image.shape[1], image.shape[0]


class Compose:
    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, image, target=None):
        for t in self.transforms:
            image, target = t(image, target)
        return image, target

    def __repr__(self):
        return "Compose(\n" + "".join("    {}\n".format(t) for t in self.transforms) + ")"


class Resize:
    """Shorter side to a size drawn from ``min_size`` (one per image), longer side capped at
    ``max_size``. ``style`` "official": the official size rounding (int of the scaled longer
    side) and PIL's bilinear filter; "mmdet": mmcv.imrescale's, one scale min(max_size / long,
    min_size / short) with int(x * scale + 0.5) per side and OpenCV's bilinear filter."""

    STYLES = ("official", "mmdet")

    def __init__(self, min_size, max_size, style="official"):
        if style not in self.STYLES:
            raise ValueError("INPUT.RESIZE_STYLE must be one of {}, got {!r}".format(self.STYLES, style))
        self.min_size = tuple(min_size) if isinstance(min_size, (list, tuple)) else (min_size,)
        self.max_size = max_size
        self.style = style

    def get_size(self, size):
        """(height, width) of the output for an input of size (width, height)."""
        w, h = size
        target = random.choice(self.min_size)
        if self.style == "mmdet":
            scale = min(self.max_size / max(w, h), target / min(w, h))
            return int(h * float(scale) + 0.5), int(w * float(scale) + 0.5)
        if self.max_size is not None:
            short, long = float(min(w, h)), float(max(w, h))
            if long / short * target > self.max_size:
                target = int(round(self.max_size * short / long))
        if (w <= h and w == target) or (h <= w and h == target):
            return h, w
        if w < h:
            return int(target * h / w), target
        return target, int(target * w / h)

    def __call__(self, image, target=None):
        out_h, out_w = self.get_size(image_size(image))
        if (out_w, out_h) != image_size(image):
            # channel order does not matter to the filter, so BGR goes through as it is
            if self.style == "mmdet":
                image = cv2.resize(image, (out_w, out_h), interpolation=cv2.INTER_LINEAR)
            else:
                image = np.asarray(Image.fromarray(image).resize((out_w, out_h), Image.BILINEAR))
        if target is not None:
            target = target.resize((out_w, out_h))
        return image, target

    def __repr__(self):
        return "Resize(min_size={}, max_size={}, style={})".format(self.min_size, self.max_size, self.style)


class RandomHorizontalFlip:
    def __init__(self, prob=0.5):
        self.prob = prob

    def __call__(self, image, target=None):
        if self.prob > 0 and random.random() < self.prob:
            image = np.ascontiguousarray(image[:, ::-1])
            if target is not None:
                target = target.transpose(FLIP_LEFT_RIGHT)
        return image, target

    def __repr__(self):
        return "RandomHorizontalFlip(prob={})".format(self.prob)


class ToTensor:
    """HxWx3 uint8 BGR array -> 3xHxW float32 tensor, still BGR and 0..255."""

    def __call__(self, image, target=None):
        return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float(), target


class Normalize:
    """(image - mean) / std per channel. With ``to_bgr255`` (Caffe2 weights) the image stays
    BGR 0..255; with ``to_rgb255`` (mmdetection) it becomes RGB 0..255; otherwise RGB 0..1
    (torchvision-style weights)."""

    def __init__(self, mean, std, to_bgr255=True, to_rgb255=False):
        if to_bgr255 and to_rgb255:
            raise ValueError("INPUT.TO_BGR255 and INPUT.TO_RGB255 are both True: choose one input format")
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.to_bgr255 = to_bgr255
        self.to_rgb255 = to_rgb255

    def __call__(self, image, target=None):
        if self.to_bgr255:
            # the official pipeline scales to 0..1 and back; the float rounding of that round
            # trip is kept so that both see bit-identical inputs
            image = image / 255.0 * 255
        elif self.to_rgb255:
            image = image[[2, 1, 0]]
        else:
            image = image[[2, 1, 0]] / 255.0
        return (image - self.mean) / self.std, target

    def __repr__(self):
        return "Normalize(mean={}, std={}, to_bgr255={}, to_rgb255={})".format(
            self.mean.flatten().tolist(), self.std.flatten().tolist(), self.to_bgr255, self.to_rgb255)