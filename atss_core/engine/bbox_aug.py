"""Test-time augmentation (TEST.BBOX_AUG): the paper's multi-scale + flip test.

The detector runs on the test scale (INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST), optionally on its
horizontal flip (H_FLIP), and on every TEST.BBOX_AUG.SCALES entry (and its flip with
SCALE_H_FLIP). As in the official code, the two merges differ:

- VOTE False: every run gives its raw per-level boxes (the post-processor skips NMS); they are
  merged by multi-label NMS and capped at TEST.DETECTIONS_PER_IMG. Extra scales use
  BBOX_AUG.MAX_SIZE and SCALE_RANGES is not used.
- VOTE True: every run gives its final detections; an extra scale below 800 uses
  INPUT.MAX_SIZE_TEST instead of BBOX_AUG.MAX_SIZE, and keeps only boxes whose area (+1
  convention, in the frame the network saw) lies strictly between lo**2 and hi**2 of its
  SCALE_RANGES entry; the merge is per-class voting (:mod:`.bbox_aug_vote`), capped at
  MODEL.ATSS.PRE_NMS_TOP_N.

Runs are merged in the frame of the first run, then mapped to the original image. The
official functions (``im_detect_bbox``, ``im_detect_bbox_hflip``, ``im_detect_bbox_scale``,
``im_detect_bbox_aug``) keep their leading parameters; ``cfg`` follows them and is the global
config when None, which is what the official ones read.
"""
import torch

from atss_core.data.transforms import transforms as T
from atss_core.data.transforms.build import image_transform
from atss_core.structures.bounding_box import FLIP_LEFT_RIGHT
from atss_core.structures.boxlist_ops import cat_boxlist
from atss_core.structures.image_list import to_image_list

from .bbox_aug_vote import _config, merge_detections, remove_boxes
from .precision import autocast_context

# the official vote path caps the maximum size of extra scales below this at INPUT.MAX_SIZE_TEST
SMALL_SCALE_LIMIT = 800


def augmentation_runs(cfg):
    """[(min_size, max_size, hflip, (lo, hi) or None)] in the official order."""
    aug = cfg.TEST.BBOX_AUG
    ranges = [tuple(r) for r in aug.SCALE_RANGES] if aug.VOTE else []  # only the vote path reads them
    if ranges and len(ranges) != len(aug.SCALES):
        raise ValueError("TEST.BBOX_AUG.SCALE_RANGES has {} entries but TEST.BBOX_AUG.SCALES has {}: give one "
                         "(lo, hi) range per scale, or none".format(len(ranges), len(aug.SCALES)))
    for r in ranges:
        if len(r) != 2 or not 0 <= r[0] < r[1]:
            raise ValueError("TEST.BBOX_AUG.SCALE_RANGES entries must be (lo, hi) with 0 <= lo < hi, got {}".format(
                list(r)))
    runs = [(cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, False, None)]
    if aug.H_FLIP:
        runs.append((cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, True, None))
    for i, scale in enumerate(aug.SCALES):
        max_size, size_range = aug.MAX_SIZE, None
        if aug.VOTE:
            if scale < SMALL_SCALE_LIMIT:
                max_size = cfg.INPUT.MAX_SIZE_TEST
            size_range = ranges[i] if ranges else None
        runs.append((scale, max_size, False, size_range))
        if aug.SCALE_H_FLIP:
            runs.append((scale, max_size, True, size_range))
    return runs


def detect_transformed(model, images, transform, size_divisible, device, use_amp=False):
    """The model's detections of BGR arrays ``images``, each through ``transform`` (one batch);
    BoxLists in the transformed frames."""
    tensors = [transform(image)[0] for image in images]
    batch = to_image_list(tensors, size_divisible).to(device)
    with torch.no_grad(), autocast_context(use_amp):
        return model(batch)


def im_detect_bbox(model, images, target_scale, target_max_size, device, cfg=None, use_amp=False):
    """Detections of ``images`` (original BGR uint8 arrays, HxWx3) resized to ``target_scale``
    (at most ``target_max_size``): one BoxList per image, in the resized frame."""
    cfg = _config(cfg)
    transform = image_transform(cfg, target_scale, target_max_size, 0.0)
    return detect_transformed(model, images, transform, cfg.DATALOADER.SIZE_DIVISIBILITY, device, use_amp)


def im_detect_bbox_hflip(model, images, target_scale, target_max_size, device, cfg=None, use_amp=False):
    """As :func:`im_detect_bbox` on the horizontally flipped images, the boxes flipped back."""
    cfg = _config(cfg)
    transform = image_transform(cfg, target_scale, target_max_size, 1.0)
    outputs = detect_transformed(model, images, transform, cfg.DATALOADER.SIZE_DIVISIBILITY, device, use_amp)
    return [output.transpose(FLIP_LEFT_RIGHT) for output in outputs]


def im_detect_bbox_scale(model, images, target_scale, target_max_size, device, hflip=False, cfg=None,
                         use_amp=False):
    """One run of the multi-scale test: :func:`im_detect_bbox_hflip` or :func:`im_detect_bbox`."""
    run = im_detect_bbox_hflip if hflip else im_detect_bbox
    return run(model, images, target_scale, target_max_size, device, cfg=cfg, use_amp=use_amp)


def im_detect_bbox_aug(model, images, device, cfg=None, use_amp=False):
    """``images``: original BGR uint8 arrays (HxWx3) -> one BoxList per image, in its frame.
    The model must have been built with the same TEST.BBOX_AUG settings (its post-processor
    leaves NMS to the merge when VOTE is False)."""
    cfg = _config(cfg)
    per_image = [[] for _ in images]
    for min_size, max_size, hflip, size_range in augmentation_runs(cfg):
        outputs = im_detect_bbox_scale(model, images, min_size, max_size, device, hflip=hflip, cfg=cfg,
                                       use_amp=use_amp)
        if size_range is not None:
            outputs = remove_boxes(outputs, *size_range)
        for output, collected in zip(outputs, per_image):
            output = output.convert("xyxy").copy_with_fields(["scores", "labels"])
            collected.append(output.resize(collected[0].size) if collected else output)
    aug = cfg.TEST.BBOX_AUG
    results = []
    for image, collected in zip(images, per_image):
        merged = cat_boxlist(collected)
        merged = merge_detections(merged, cfg.MODEL.ATSS.NMS_TH, cfg.TEST.DETECTIONS_PER_IMG, vote=aug.VOTE,
                                  vote_th=aug.VOTE_TH, merge_type=aug.MERGE_TYPE,
                                  score_th=cfg.MODEL.ATSS.INFERENCE_TH, num_classes=cfg.MODEL.ATSS.NUM_CLASSES,
                                  vote_detections_per_img=cfg.MODEL.ATSS.PRE_NMS_TOP_N)
        results.append(merged.resize(T.image_size(image)))
    return results
