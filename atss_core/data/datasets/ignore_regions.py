"""Ignore regions in training targets (MODEL.ATSS.IGNORE_CROWD): boxes that are no object to
learn (COCO crowds, VOC difficult objects) but whose anchors should not learn "background"
either. They travel in the target BoxList itself, flagged by a boolean "ignore" field, so that
every transform moves them with the objects; the loss separates them again
(structures/boxlist_ops.split_ignore_regions)."""
import torch

from atss_core.structures.boxlist_ops import IGNORE_FIELD, cat_boxlist


def with_ignore_regions(objects, regions):
    """``objects`` and ``regions`` (BoxLists of one image with the same fields) as one target,
    the regions flagged in the "ignore" field and labelled 0 (never a class)."""
    objects.add_field(IGNORE_FIELD, torch.zeros(len(objects), dtype=torch.bool))
    regions.add_field(IGNORE_FIELD, torch.ones(len(regions), dtype=torch.bool))
    regions.add_field("labels", torch.zeros(len(regions), dtype=torch.int64))
    return cat_boxlist([objects, regions])
