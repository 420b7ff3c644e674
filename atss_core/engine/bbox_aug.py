"""Test-time augmentation (TEST.BBOX_AUG): the paper's multi-scale + flip test.

The detector runs on the test scale (INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST), optionally on its
horizontal flip (H_FLIP), and on every TEST.BBOX_AUG.SCALES entry with MAX_SIZE (and its flip
with SCALE_H_FLIP). At an extra scale only the boxes whose sqrt(area), in the frame the network
saw, lies within that scale's SCALE_RANGES entry are kept (no filter when SCALE_RANGES is
empty). All boxes are mapped back to the original image and merged by :func:`merge_detections`.
"""
import torch

from atss_core.data.transforms import transforms as T
from atss_core.structures.bounding_box import FLIP_LEFT_RIGHT
from atss_core.structures.boxlist_ops import cat_boxlist
from atss_core.structures.image_list import to_image_list

from .bbox_aug_vote import merge_detections
from .precision import autocast_context


def augmentation_runs(cfg):
    """[(min_size, max_size, hflip, (lo, hi) or None)] in the official order."""
    aug = cfg.TEST.BBOX_AUG
    ranges = [tuple(r) for r in aug.SCALE_RANGES]
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
        size_range = ranges[i] if ranges else None
        runs.append((scale, aug.MAX_SIZE, False, size_range))
        if aug.SCALE_H_FLIP:
            runs.append((scale, aug.MAX_SIZE, True, size_range))
    return runs


def _keep_sizes_within(boxlist, size_range):
    lo, hi = size_range
    area = boxlist.area()
    keep = ((area > lo * lo) & (area < hi * hi)).nonzero().squeeze(1)
    return boxlist[keep]


def _detect(model, images, transform, size_divisible, device, use_amp):
    tensors = [transform(image)[0] for image in images]
    batch = to_image_list(tensors, size_divisible).to(device)
    with torch.no_grad(), autocast_context(use_amp):
        return model(batch)


def im_detect_bbox_aug(model, images, device, cfg, use_amp=False):
    """``images``: original BGR uint8 arrays (HxWx3) -> one BoxList per image, in its frame."""
    normalize = T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD, to_bgr255=cfg.INPUT.TO_BGR255)
    per_image = [[] for _ in images]
    for min_size, max_size, hflip, size_range in augmentation_runs(cfg):
        transform = T.Compose([T.Resize(min_size, max_size), T.RandomHorizontalFlip(1.0 if hflip else 0.0),
                               T.ToTensor(), normalize])
        outputs = _detect(model, images, transform, cfg.DATALOADER.SIZE_DIVISIBILITY, device, use_amp)
        for image, output, collected in zip(images, outputs, per_image):
            if hflip:
                output = output.transpose(FLIP_LEFT_RIGHT)
            if size_range is not None:
                output = _keep_sizes_within(output, size_range)
            collected.append(output.resize(T.image_size(image)).copy_with_fields(["scores", "labels"]))
    aug = cfg.TEST.BBOX_AUG
    results = []
    for collected in per_image:
        merged = cat_boxlist([b.convert("xyxy") for b in collected])
        results.append(merge_detections(merged, cfg.MODEL.ATSS.NMS_TH, cfg.MODEL.ATSS.DETECTIONS_PER_IMG,
                                        vote=aug.VOTE, vote_th=aug.VOTE_TH, merge_type=aug.MERGE_TYPE,
                                        score_th=cfg.MODEL.ATSS.INFERENCE_TH))
    return results
