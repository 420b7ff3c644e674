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
from torchvision import tv_tensors
from torchvision.transforms import v2

from atss_core.structures.bounding_box import FLIP_LEFT_RIGHT, BoxList
from atss_core.structures.boxlist_ops import IGNORE_FIELD


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

    def invert(self, tensor):
        """A normalised 3xHxW tensor back to the HxWx3 uint8 BGR image it came from (for pictures)."""
        image = tensor.detach().cpu().float() * self.std + self.mean
        if not self.to_bgr255:
            image = image[[2, 1, 0]] * (1.0 if self.to_rgb255 else 255.0)
        return np.ascontiguousarray(image.round().clamp(0, 255).byte().permute(1, 2, 0).numpy())

    def __repr__(self):
        return "Normalize(mean={}, std={}, to_bgr255={}, to_rgb255={})".format(
            self.mean.flatten().tolist(), self.std.flatten().tolist(), self.to_bgr255, self.to_rgb255)

class TorchvisionV2:
    """Runs torchvision.transforms.v2 ``steps`` on an (image, target) pair of this pipeline.

    The BGR array goes in as an RGB ``tv_tensors.Image`` (the colour transforms assume RGB) and
    the boxes as ``tv_tensors.BoundingBoxes`` in torchvision's convention (x2, y2 exclusive:
    ``plus_one`` is added and taken off again), so every geometric step moves them exactly.
    Each box's index rides along as its label: the boxes that survive keep all their fields.
    A step is a v2 transform or a callable on the whole sample dict. Random draws come from
    torch's generator, which the training loader seeds per sample (utils/seed.py).
    """

    def __init__(self, steps):
        self.steps = list(steps)

    def __call__(self, image, target=None):
        if target is None:
            return image, target
        height, width = image.shape[:2]
        target = target.convert("xyxy")
        plus_one = target.plus_one
        exclusive = target.bbox + target.bbox.new_tensor([0.0, 0.0, plus_one, plus_one])
        # a box on the right or bottom edge of a downscaled image ends past it by under a pixel
        # (the official resize scales the inclusive corner): on the canvas, as torchvision expects
        exclusive = exclusive.clamp(min=0).minimum(exclusive.new_tensor([width, height, width, height]))
        ignore = target.get_field(IGNORE_FIELD) if target.has_field(IGNORE_FIELD) else None
        sample = {
            "image": tv_tensors.Image(torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1].transpose(2, 0, 1)))),
            "boxes": tv_tensors.BoundingBoxes(exclusive, format="XYXY", canvas_size=(height, width)),
            "labels": torch.arange(len(target)),
            # by original box index (not filtered with the boxes): which boxes are objects
            "object_by_index": torch.ones(len(target), dtype=torch.bool) if ignore is None else ~ignore,
        }
        for step in self.steps:
            sample = step(sample)
        kept = sample["labels"]
        out_h, out_w = sample["image"].shape[-2:]
        boxes = sample["boxes"].as_subclass(torch.Tensor) - target.bbox.new_tensor([0.0, 0.0, plus_one, plus_one])
        result = BoxList(boxes.reshape(-1, 4), (out_w, out_h), mode="xyxy", plus_one=plus_one)
        for name in target.fields():
            result.add_field(name, target.get_field(name)[kept])
        rgb = sample["image"].as_subclass(torch.Tensor).permute(1, 2, 0).numpy()
        return np.ascontiguousarray(rgb[:, :, ::-1]), result

    def __repr__(self):
        return "TorchvisionV2({})".format(", ".join(repr(s) for s in self.steps))


class ScaleJitterCrop:
    """Large-scale jitter on a v2 sample: scaled by a factor drawn from ``scale_range``
    (torchvision's ScaleJitter, with the sample's own size as the target), then, where it grew,
    a random crop back to that size, so that memory stays that of the unjittered image."""

    def __init__(self, scale_range):
        self.scale_range = tuple(float(s) for s in scale_range)

    def __call__(self, sample):
        height, width = sample["image"].shape[-2:]
        # ScaleJitter's target_size is (width, height): min(size[0] / W, size[1] / H) x the factor
        sample = v2.ScaleJitter((width, height), scale_range=self.scale_range, antialias=True)(sample)
        new_h, new_w = sample["image"].shape[-2:]
        if new_h > height or new_w > width:
            sample = v2.RandomCrop((min(height, new_h), min(width, new_w)))(sample)
        return sample

    def __repr__(self):
        return "ScaleJitterCrop(scale_range={})".format(self.scale_range)


class IoUCropAroundObjects:
    """SSD's IoU crop on a v2 sample with probability ``prob``: torchvision's RandomIoUCrop
    chooses the crop from the real objects alone (an ignore region is no object to keep in the
    picture), then the crop applies to every box, and a box whose centre falls outside it is
    dropped, as RandomIoUCrop drops it. Images without objects, or too thin to crop, pass."""

    MIN_SIDE = 8

    def __init__(self, prob):
        self.prob = prob
        self.crop = v2.RandomIoUCrop()

    def __call__(self, sample):
        if not float(torch.rand(1)) < self.prob:
            return sample
        boxes, labels = sample["boxes"], sample["labels"]
        objects = sample["object_by_index"][labels]
        height, width = sample["image"].shape[-2:]
        if not bool(objects.any()) or min(height, width) < self.MIN_SIDE:
            return sample
        params = self.crop.make_params([sample["image"], tv_tensors.wrap(boxes[objects], like=boxes)])
        if not params:  # the "no crop" option was drawn
            return sample
        top, left, crop_h, crop_w = params["top"], params["left"], params["height"], params["width"]
        plain = boxes.as_subclass(torch.Tensor)
        cx, cy = (plain[:, 0] + plain[:, 2]) / 2, (plain[:, 1] + plain[:, 3]) / 2
        keep = (left < cx) & (cx < left + crop_w) & (top < cy) & (cy < top + crop_h)
        cropped = v2.functional.crop(boxes, top=top, left=left, height=crop_h, width=crop_w)
        return dict(sample, image=v2.functional.crop(sample["image"], top=top, left=left, height=crop_h, width=crop_w),
                    boxes=tv_tensors.wrap(cropped[keep], like=cropped), labels=labels[keep])

    def __repr__(self):
        return "IoUCropAroundObjects(prob={})".format(self.prob)
