"""Transforms from the INPUT config keys: the one place the training and test pipelines are built.

Training: [colour jitter, zoom out, IoU crop] -> resize -> [large-scale jitter] -> flips ->
tensor -> normalise. The bracketed steps and the vertical flip are torchvision.transforms.v2's,
each off by default, so that the default pipeline is exactly the official one (resize, a
horizontal flip with probability 0.5).
"""
from torchvision.transforms import v2

from . import transforms as T


def _size_range(cfg):
    lo, hi = cfg.INPUT.MIN_SIZE_RANGE_TRAIN
    if lo == -1:
        return cfg.INPUT.MIN_SIZE_TRAIN
    if not 0 < lo <= hi:
        raise ValueError("INPUT.MIN_SIZE_RANGE_TRAIN must be (lo, hi) with 0 < lo <= hi, got {}".format(
            cfg.INPUT.MIN_SIZE_RANGE_TRAIN))
    return list(range(lo, hi + 1))


def _probability(cfg, key):
    value = float(getattr(cfg.INPUT, key))
    if not 0.0 <= value <= 1.0:
        raise ValueError("INPUT.{} must be a probability in [0, 1], got {}".format(key, value))
    return value


def mean_pixel_rgb255(cfg):
    """PIXEL_MEAN as an RGB 0..255 colour: what zoom-out fills with, so that the new border
    normalises to about zero whatever the input format."""
    mean = [float(v) for v in cfg.INPUT.PIXEL_MEAN]
    if cfg.INPUT.TO_BGR255:
        return [int(round(v)) for v in mean[::-1]]
    scale = 1.0 if cfg.INPUT.TO_RGB255 else 255.0
    return [int(round(v * scale)) for v in mean]


def _sanitize():
    # boxes of under a pixel after a crop or a zoom are gone from the picture
    return v2.SanitizeBoundingBoxes(min_size=1.0)


def augmentation_before_resize(cfg):
    """The v2 steps on the decoded image, or [] when all are off."""
    steps = []
    distort = _probability(cfg, "PHOTOMETRIC_DISTORT_PROB")
    if distort > 0:
        steps.append(T.TorchvisionV2([v2.RandomPhotometricDistort(p=distort)]))
    zoom_out = _probability(cfg, "ZOOM_OUT_PROB")
    if zoom_out > 0:
        ratio = float(cfg.INPUT.ZOOM_OUT_MAX_RATIO)
        if ratio < 1.0:
            raise ValueError("INPUT.ZOOM_OUT_MAX_RATIO must be >= 1, got {}".format(ratio))
        steps.append(T.TorchvisionV2([v2.RandomZoomOut(fill=mean_pixel_rgb255(cfg), side_range=(1.0, ratio),
                                                       p=zoom_out), _sanitize()]))
    iou_crop = _probability(cfg, "IOU_CROP_PROB")
    if iou_crop > 0:
        steps.append(T.TorchvisionV2([T.IoUCropAroundObjects(iou_crop), _sanitize()]))
    return steps


def augmentation_after_resize(cfg):
    """Large-scale jitter and the vertical flip (v2), or [] when both are off."""
    steps = []
    jitter = tuple(cfg.INPUT.SCALE_JITTER_RANGE)
    if jitter:
        if len(jitter) != 2 or not 0 < jitter[0] <= jitter[1]:
            raise ValueError("INPUT.SCALE_JITTER_RANGE must be empty or (lo, hi) with 0 < lo <= hi, got {}".format(
                jitter))
        steps.append(T.TorchvisionV2([T.ScaleJitterCrop(jitter), _sanitize()]))
    vertical = _probability(cfg, "VERTICAL_FLIP_PROB_TRAIN")
    if vertical > 0:
        steps.append(T.TorchvisionV2([v2.RandomVerticalFlip(p=vertical)]))
    return steps


def describe_augmentation(cfg):
    """One line for the start-up block: the training augmentation this config switches on."""
    inp = cfg.INPUT
    parts = []
    if inp.PHOTOMETRIC_DISTORT_PROB > 0:
        parts.append("photometric {:g}".format(inp.PHOTOMETRIC_DISTORT_PROB))
    if inp.ZOOM_OUT_PROB > 0:
        parts.append("zoom out {:g} (up to x{:g})".format(inp.ZOOM_OUT_PROB, inp.ZOOM_OUT_MAX_RATIO))
    if inp.IOU_CROP_PROB > 0:
        parts.append("IoU crop {:g}".format(inp.IOU_CROP_PROB))
    if inp.SCALE_JITTER_RANGE:
        parts.append("scale jitter {}".format(tuple(inp.SCALE_JITTER_RANGE)))
    if inp.VERTICAL_FLIP_PROB_TRAIN > 0:
        parts.append("vertical flip {:g}".format(inp.VERTICAL_FLIP_PROB_TRAIN))
    parts.append("horizontal flip {:g}".format(inp.HORIZONTAL_FLIP_PROB_TRAIN))
    official = len(parts) == 1 and inp.HORIZONTAL_FLIP_PROB_TRAIN == 0.5
    return ", ".join(parts) + (" (official)" if official else "")


def build_transforms(cfg, is_train=True):
    if not is_train:
        return image_transform(cfg, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, 0.0)
    flip_prob = _probability(cfg, "HORIZONTAL_FLIP_PROB_TRAIN")
    return image_transform(cfg, _size_range(cfg), cfg.INPUT.MAX_SIZE_TRAIN, flip_prob,
                           before_resize=augmentation_before_resize(cfg),
                           after_resize=augmentation_after_resize(cfg))


def image_transform(cfg, min_size, max_size, flip_prob, before_resize=(), after_resize=()):
    """Resize (INPUT.RESIZE_STYLE), flip with ``flip_prob``, to a tensor, normalise: the
    training and test pipeline, and each run of the multi-scale test; ``before_resize`` and
    ``after_resize``: augmentation steps around the resize."""
    return T.Compose([
        *before_resize,
        T.Resize(min_size, max_size, style=cfg.INPUT.RESIZE_STYLE),
        *after_resize,
        T.RandomHorizontalFlip(flip_prob),
        T.ToTensor(),
        normalize_transform(cfg),
    ])


def normalize_transform(cfg):
    return T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD, to_bgr255=cfg.INPUT.TO_BGR255,
                       to_rgb255=cfg.INPUT.TO_RGB255)
