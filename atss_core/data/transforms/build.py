"""Transforms from the INPUT config keys."""
from . import transforms as T


def build_transforms(cfg, is_train=True):
    if is_train:
        lo, hi = cfg.INPUT.MIN_SIZE_RANGE_TRAIN
        if lo == -1:
            min_size = cfg.INPUT.MIN_SIZE_TRAIN
        else:
            if not 0 < lo <= hi:
                raise ValueError("INPUT.MIN_SIZE_RANGE_TRAIN must be (lo, hi) with 0 < lo <= hi, got {}".format(
                    cfg.INPUT.MIN_SIZE_RANGE_TRAIN))
            min_size = list(range(lo, hi + 1))
        max_size, flip_prob = cfg.INPUT.MAX_SIZE_TRAIN, 0.5
    else:
        min_size, max_size, flip_prob = cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, 0.0
    return image_transform(cfg, min_size, max_size, flip_prob)


def image_transform(cfg, min_size, max_size, flip_prob):
    """Resize (INPUT.RESIZE_STYLE), flip with ``flip_prob``, to a tensor, normalise: the
    training and test pipeline, and each run of the multi-scale test."""
    return T.Compose([
        T.Resize(min_size, max_size, style=cfg.INPUT.RESIZE_STYLE),
        T.RandomHorizontalFlip(flip_prob),
        T.ToTensor(),
        normalize_transform(cfg),
    ])


def normalize_transform(cfg):
    return T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD, to_bgr255=cfg.INPUT.TO_BGR255,
                       to_rgb255=cfg.INPUT.TO_RGB255)
