"""Tiled inference (TEST.TILE) for images much larger than the test size, SAHI's approach:

- the whole image, resized to the test size as without tiling;
- overlapping SIZE x SIZE tiles of the original image (neighbours share OVERLAP x SIZE
  pixels, the last tile of a row or column flush with the image's edge), each through the
  same test resize, so small objects are seen at their full resolution;
- every tile's boxes mapped back to image coordinates; a box that touches a tile edge inside
  the image and is narrower (across that edge) than the overlap with the neighbouring tile is
  dropped: that neighbour holds the object whole;
- everything merged by the model's own post-processing NMS (class-wise or class-agnostic, per
  MODEL.ATSS.NMS_CLASS_AGNOSTIC and the convention of MODEL.ATSS.POSTPROCESS) and capped at
  TEST.DETECTIONS_PER_IMG.

Images arrive as original BGR uint8 arrays, as for the multi-scale test (the test loader hands
them over untransformed); results are BoxLists in each image's own frame.
"""
import numpy as np
import torch

from atss_core.data.transforms import transforms as T
from atss_core.data.transforms.build import image_transform
from atss_core.structures.bounding_box import BoxList
from atss_core.structures.boxlist_ops import cat_boxlist

from .bbox_aug import detect_transformed

TILES_PER_BATCH = 4
# a box within this many pixels of a tile edge counts as cut by it
EDGE_MARGIN = 2.0


def check_tile_settings(cfg):
    tile = cfg.TEST.TILE
    if not tile.ENABLED:
        return
    if int(tile.SIZE) < 32:
        raise ValueError("TEST.TILE.SIZE must be at least 32 pixels, got {}".format(tile.SIZE))
    if not 0.0 <= float(tile.OVERLAP) < 1.0:
        raise ValueError("TEST.TILE.OVERLAP must be in [0, 1) (a fraction of TEST.TILE.SIZE), got {}".format(
            tile.OVERLAP))
    if cfg.TEST.BBOX_AUG.ENABLED:
        raise ValueError("TEST.TILE and TEST.BBOX_AUG cannot be combined: choose tiles or the multi-scale test")


def tile_starts(length, size, overlap):
    """Start offsets of the tiles along one side of ``length`` pixels: every
    round(size * (1 - overlap)) pixels, the last one flush with the far edge."""
    if length <= size:
        return [0]
    stride = max(1, int(round(size * (1.0 - overlap))))
    starts = list(range(0, length - size, stride))
    starts.append(length - size)
    return starts


def tile_layout(width, height, size, overlap):
    """[((x0, y0, x1, y1), (left, top, right, bottom))] the tiles covering a width x height image
    (row by row), each with the pixels it shares with its neighbour on that side (0 where the
    side is the image's edge)."""
    xs, ys = tile_starts(width, size, overlap), tile_starts(height, size, overlap)
    left, right = _shared_with_neighbours(xs, size)
    top, bottom = _shared_with_neighbours(ys, size)
    return [((x0, y0, min(x0 + size, width), min(y0 + size, height)), (left[i], top[j], right[i], bottom[j]))
            for j, y0 in enumerate(ys) for i, x0 in enumerate(xs)]


def _shared_with_neighbours(starts, size):
    """Per tile of one axis, the pixels it shares with the previous and the next tile (0 at the image's edges)."""
    before = [0] + [starts[i - 1] + size - starts[i] for i in range(1, len(starts))]
    after = [starts[i] + size - starts[i + 1] for i in range(len(starts) - 1)] + [0]
    return before, after


def keep_whole_boxes(boxes, window, shared):
    """[n] bool: the boxes (image coordinates, xyxy) of a tile ``window`` that are not cut by an
    edge whose neighbour holds them whole. ``shared``: (left, top, right, bottom) pixels shared
    with the neighbour on that side, 0 where the side is the image's edge."""
    x0, y0, x1, y1 = window
    left, top, right, bottom = shared
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cut = torch.zeros(boxes.shape[0], dtype=torch.bool)
    if left:
        cut |= (boxes[:, 0] <= x0 + EDGE_MARGIN) & (widths < left)
    if top:
        cut |= (boxes[:, 1] <= y0 + EDGE_MARGIN) & (heights < top)
    if right:
        cut |= (boxes[:, 2] >= x1 - 1 - EDGE_MARGIN) & (widths < right)
    if bottom:
        cut |= (boxes[:, 3] >= y1 - 1 - EDGE_MARGIN) & (heights < bottom)
    return ~cut


def _detect(model, crops, transform, size_divisible, device, use_amp):
    """Detections of BGR arrays ``crops`` (one BoxList each, in the crop's own frame, on the CPU),
    TILES_PER_BATCH at a time."""
    results = []
    for start in range(0, len(crops), TILES_PER_BATCH):
        part = crops[start:start + TILES_PER_BATCH]
        outputs = detect_transformed(model, part, transform, size_divisible, device, use_amp)
        for crop, output in zip(part, outputs):
            results.append(output.to(torch.device("cpu")).convert("xyxy").resize(T.image_size(crop)))
    return results


def _placed(boxlist, offset_x, offset_y, image_size):
    """``boxlist`` moved by (offset_x, offset_y) into an image of ``image_size`` (scores, labels kept)."""
    shift = boxlist.bbox.new_tensor([offset_x, offset_y, offset_x, offset_y])
    placed = BoxList(boxlist.bbox + shift, image_size, mode="xyxy", plus_one=boxlist.plus_one)
    placed.add_field("scores", boxlist.get_field("scores"))
    placed.add_field("labels", boxlist.get_field("labels"))
    return placed


def im_detect_tiled(model, images, device, cfg, use_amp=False):
    """``images``: original BGR uint8 arrays (HxWx3) -> one BoxList per image, in its frame (the
    module docstring says how)."""
    tile = cfg.TEST.TILE
    size, overlap = int(tile.SIZE), float(tile.OVERLAP)
    size_divisible = cfg.DATALOADER.SIZE_DIVISIBILITY
    transform = image_transform(cfg, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, 0.0)
    post = model.rpn.box_selector_test
    results = []
    whole = _detect(model, list(images), transform, size_divisible, device, use_amp)
    for image, whole_detections in zip(images, whole):
        height, width = image.shape[:2]
        layout = tile_layout(width, height, size, overlap)
        collected = [whole_detections.copy_with_fields(["scores", "labels"])]
        if len(layout) > 1:  # one tile is the whole image again
            crops = [np.ascontiguousarray(image[y0:y1, x0:x1]) for (x0, y0, x1, y1), _ in layout]
            for (window, sides), detections in zip(layout,
                                                   _detect(model, crops, transform, size_divisible, device, use_amp)):
                placed = _placed(detections, window[0], window[1], (width, height))
                collected.append(placed[keep_whole_boxes(placed.bbox, window, sides).nonzero().squeeze(1)])
        results.append(post.select_over_all_levels([cat_boxlist(collected)])[0])
    return results
