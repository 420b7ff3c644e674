"""BoxList: the boxes of one image, with their image size and per-box fields.

Boxes follow the legacy maskrcnn-benchmark pixel convention by default (``plus_one`` =
TO_REMOVE = 1): a box covering pixels x1..x2 has width x2 - x1 + 1. ``plus_one`` = 0 is the
convention of mmdetection, torchvision and detectron2 (width x2 - x1; MODEL.LEGACY_PLUS_ONE False).
"""
import torch

# transpose methods
FLIP_LEFT_RIGHT = 0
FLIP_TOP_BOTTOM = 1

TO_REMOVE = 1
_MODES = ("xyxy", "xywh")


def clip_boxes_to_image(boxes, width, height, plus_one=TO_REMOVE):
    """xyxy ``boxes`` [..., 4] clamped to x in [0, width - plus_one], y in [0, height - plus_one]. Shared by
    BoxList.clip_to_image and the post-processing that is also exported to ONNX, where
    ``width``/``height`` are 0-dim tensors: a Python int would be frozen into the traced graph."""
    ones = torch.ones((), dtype=boxes.dtype, device=boxes.device)  # a 0-dim limit on any device
    x = boxes[..., 0::2].clamp(min=0).minimum((width - plus_one) * ones)
    y = boxes[..., 1::2].clamp(min=0).minimum((height - plus_one) * ones)
    return torch.stack([x[..., 0], y[..., 0], x[..., 1], y[..., 1]], dim=-1)


class BoxList:
    """A set of boxes for one image.

    Args:
        bbox: [N, 4] boxes (anything ``torch.as_tensor`` accepts), in ``mode``.
        image_size: (width, height) of the image the boxes live in.
        mode: "xyxy" (corners) or "xywh" (corner + size).
        plus_one: 1 (a box over pixels x1..x2 is x2 - x1 + 1 wide) or 0 (x2 - x1); kept by every
            BoxList derived from this one.
    Extra per-box data (labels, scores, ...) are kept as fields, indexed along with the boxes.
    """

    def __init__(self, bbox, image_size, mode="xyxy", plus_one=TO_REMOVE):
        device = bbox.device if isinstance(bbox, torch.Tensor) else torch.device("cpu")
        bbox = torch.as_tensor(bbox, dtype=torch.float32, device=device)
        if bbox.numel() == 0:
            bbox = bbox.reshape(0, 4)
        if bbox.ndimension() != 2:
            raise ValueError("BoxList: bbox should have 2 dimensions [N, 4], got shape {}".format(tuple(bbox.shape)))
        if bbox.size(-1) != 4:
            raise ValueError("BoxList: last dimension of bbox should have size 4, got shape {}".format(
                tuple(bbox.shape)))
        if mode not in _MODES:
            raise ValueError("BoxList: mode should be 'xyxy' or 'xywh', got {!r}".format(mode))
        self.bbox = bbox
        self.size = tuple(int(s) for s in image_size)  # (width, height)
        self.mode = mode
        self.plus_one = plus_one
        self.extra_fields = {}

    # fields
    def add_field(self, field, field_data):
        self.extra_fields[field] = field_data

    def get_field(self, field):
        if field not in self.extra_fields:
            raise KeyError("BoxList has no field {!r}; it has {}".format(field, sorted(self.extra_fields)))
        return self.extra_fields[field]

    def has_field(self, field):
        return field in self.extra_fields

    def fields(self):
        return list(self.extra_fields.keys())

    def _copy_extra_fields(self, bbox):
        for k, v in bbox.extra_fields.items():
            self.extra_fields[k] = v

    # geometry
    def convert(self, mode):
        if mode not in _MODES:
            raise ValueError("BoxList.convert: mode should be 'xyxy' or 'xywh', got {!r}".format(mode))
        if mode == self.mode:
            return self
        xmin, ymin, xmax, ymax = self._split_into_xyxy()
        if mode == "xyxy":
            bbox = torch.cat((xmin, ymin, xmax, ymax), dim=-1)
        else:
            bbox = torch.cat((xmin, ymin, xmax - xmin + self.plus_one, ymax - ymin + self.plus_one), dim=-1)
        result = BoxList(bbox, self.size, mode=mode, plus_one=self.plus_one)
        result._copy_extra_fields(self)
        return result

    def _split_into_xyxy(self):
        if self.mode == "xyxy":
            return self.bbox.split(1, dim=-1)
        xmin, ymin, w, h = self.bbox.split(1, dim=-1)
        return (xmin, ymin, xmin + (w - self.plus_one).clamp(min=0), ymin + (h - self.plus_one).clamp(min=0))

    def resize(self, size, *args, **kwargs):
        """Rescales the boxes to an image of ``size`` = (width, height)."""
        ratios = tuple(float(s) / float(s_orig) for s, s_orig in zip(size, self.size))
        if ratios[0] == ratios[1]:
            bbox = BoxList(self.bbox * ratios[0], size, mode=self.mode, plus_one=self.plus_one)
        else:
            ratio_width, ratio_height = ratios
            xmin, ymin, xmax, ymax = self._split_into_xyxy()
            scaled = torch.cat((xmin * ratio_width, ymin * ratio_height, xmax * ratio_width, ymax * ratio_height),
                               dim=-1)
            bbox = BoxList(scaled, size, mode="xyxy", plus_one=self.plus_one).convert(self.mode)
        for k, v in self.extra_fields.items():
            if not isinstance(v, torch.Tensor) and hasattr(v, "resize"):
                v = v.resize(size, *args, **kwargs)
            bbox.add_field(k, v)
        return bbox

    def transpose(self, method):
        """Flips the boxes: FLIP_LEFT_RIGHT or FLIP_TOP_BOTTOM."""
        if method not in (FLIP_LEFT_RIGHT, FLIP_TOP_BOTTOM):
            raise ValueError("BoxList.transpose: only FLIP_LEFT_RIGHT (0) and FLIP_TOP_BOTTOM (1) are implemented")
        image_width, image_height = self.size
        xmin, ymin, xmax, ymax = self._split_into_xyxy()
        if method == FLIP_LEFT_RIGHT:
            flipped = (image_width - xmax - self.plus_one, ymin, image_width - xmin - self.plus_one, ymax)
        else:
            flipped = (xmin, image_height - ymax, xmax, image_height - ymin)
        bbox = BoxList(torch.cat(flipped, dim=-1), self.size, mode="xyxy", plus_one=self.plus_one)
        for k, v in self.extra_fields.items():
            if not isinstance(v, torch.Tensor) and hasattr(v, "transpose"):
                v = v.transpose(method)
            bbox.add_field(k, v)
        return bbox.convert(self.mode)

    def crop(self, box):
        """Crops to ``box`` = (x1, y1, x2, y2); boxes are moved into the crop's frame and clamped."""
        xmin, ymin, xmax, ymax = self._split_into_xyxy()
        w, h = box[2] - box[0], box[3] - box[1]
        cropped = (
            (xmin - box[0]).clamp(min=0, max=w),
            (ymin - box[1]).clamp(min=0, max=h),
            (xmax - box[0]).clamp(min=0, max=w),
            (ymax - box[1]).clamp(min=0, max=h),
        )
        bbox = BoxList(torch.cat(cropped, dim=-1), (w, h), mode="xyxy", plus_one=self.plus_one)
        for k, v in self.extra_fields.items():
            if not isinstance(v, torch.Tensor) and hasattr(v, "crop"):
                v = v.crop(box)
            bbox.add_field(k, v)
        return bbox.convert(self.mode)

    def clip_to_image(self, remove_empty=True):
        """Clamps the boxes to the image; with remove_empty, drops boxes left with no extent."""
        self.bbox.copy_(clip_boxes_to_image(self.bbox, self.size[0], self.size[1], self.plus_one))  # in place
        if remove_empty:
            box = self.bbox
            keep = (box[:, 3] > box[:, 1]) & (box[:, 2] > box[:, 0])
            return self[keep]
        return self

    def area(self):
        box = self.bbox
        if self.mode == "xyxy":
            return (box[:, 2] - box[:, 0] + self.plus_one) * (box[:, 3] - box[:, 1] + self.plus_one)
        return box[:, 2] * box[:, 3]

    # containers
    def to(self, device):
        bbox = BoxList(self.bbox.to(device), self.size, self.mode, self.plus_one)
        for k, v in self.extra_fields.items():
            if hasattr(v, "to"):
                v = v.to(device)
            bbox.add_field(k, v)
        return bbox

    def __getitem__(self, item):
        bbox = BoxList(self.bbox[item], self.size, self.mode, self.plus_one)
        for k, v in self.extra_fields.items():
            bbox.add_field(k, v[item])
        return bbox

    def __len__(self):
        return self.bbox.shape[0]

    def copy_with_fields(self, fields, skip_missing=False):
        bbox = BoxList(self.bbox, self.size, self.mode, self.plus_one)
        if not isinstance(fields, (list, tuple)):
            fields = [fields]
        for field in fields:
            if self.has_field(field):
                bbox.add_field(field, self.get_field(field))
            elif not skip_missing:
                raise KeyError("BoxList has no field {!r}; it has {}".format(field, sorted(self.extra_fields)))
        return bbox

    def __repr__(self):
        return "{}(num_boxes={}, image_width={}, image_height={}, mode={})".format(
            self.__class__.__name__, len(self), self.size[0], self.size[1], self.mode)
