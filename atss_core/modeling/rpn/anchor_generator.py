"""Anchors per FPN level: +1 sizes as in Detectron, but centred on stride / 2 as in the ATSS code."""
import math

import torch
from torch import nn

from atss_core.structures.bounding_box import BoxList


class BufferList(nn.Module):
    """Holds tensors as buffers named "0", "1", ... so they follow .to() and appear in the state dict."""

    def __init__(self, buffers=()):
        super().__init__()
        for i, buffer in enumerate(buffers):
            self.register_buffer(str(i), buffer)

    def __len__(self):
        return len(self._buffers)

    def __iter__(self):
        return iter(self._buffers.values())


def _anchors_from_whctr(ws, hs, x_ctr, y_ctr):
    return torch.stack([x_ctr - 0.5 * (ws - 1), y_ctr - 0.5 * (hs - 1), x_ctr + 0.5 * (ws - 1), y_ctr + 0.5 * (hs - 1)],
                       dim=1)


def generate_anchors(stride, sizes, aspect_ratios):
    """[len(aspect_ratios) * len(sizes), 4] cell anchors centred on the first stride x stride cell.

    Widths/heights per aspect ratio are rounded on the stride-sized base box, then scaled
    by size / stride, aspect-ratio major (the channel order of official checkpoints). The
    base box is (0.5, 0.5, stride - 0.5, stride - 0.5) as in the ATSS code, so the centre is
    stride / 2, half a pixel right of Detectron's (stride - 1) / 2."""
    base = float(stride)
    ctr = 0.5 * base
    ratios = torch.tensor(aspect_ratios, dtype=torch.float64)
    ws = torch.round(torch.sqrt(base * base / ratios))
    hs = torch.round(ws * ratios)
    scales = torch.tensor(sizes, dtype=torch.float64) / stride
    all_ws = (ws[:, None] * scales[None, :]).reshape(-1)
    all_hs = (hs[:, None] * scales[None, :]).reshape(-1)
    ctrs = torch.full_like(all_ws, ctr)
    return _anchors_from_whctr(all_ws, all_hs, ctrs, ctrs)


def generate_centred_anchors(sizes, aspect_ratios):
    """[len(aspect_ratios) * len(sizes), 4] cell anchors centred on the grid point (offset 0),
    w = size / sqrt(ratio), h = size * sqrt(ratio), without rounding or +1, aspect-ratio major
    (mmdetection's AnchorGenerator with center_offset 0; MODEL.LEGACY_PLUS_ONE False)."""
    ratios = torch.tensor(aspect_ratios, dtype=torch.float32)
    sizes = torch.tensor(sizes, dtype=torch.float32)
    h_ratios = torch.sqrt(ratios)
    ws = (sizes[None, :] / h_ratios[:, None]).reshape(-1)
    hs = (sizes[None, :] * h_ratios[:, None]).reshape(-1)
    return torch.stack([-0.5 * ws, -0.5 * hs, 0.5 * ws, 0.5 * hs], dim=1)


def anchor_grid(cell_anchors, stride, height, width):
    """[H * W * A, 4] anchors of an H x W feature map, ordered (y, x, anchor): the cell
    anchors [A, 4] shifted by ``stride`` per cell. The one grid of both the eager model
    (AnchorGenerator.grid_anchors) and the exported graph, where ``height`` and ``width`` are
    0-dim tensors (traced from the feature's shape, so the graph follows the input size)."""
    # arange(n) * stride: the same float32 values as arange(0, n * stride, stride), and traceable
    shifts_x = torch.arange(width, dtype=torch.float32, device=cell_anchors.device) * stride
    shifts_y = torch.arange(height, dtype=torch.float32, device=cell_anchors.device) * stride
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
    return (shifts.view(-1, 1, 4) + cell_anchors.view(1, -1, 4)).reshape(-1, 4)


class AnchorGenerator(nn.Module):
    """For each image and feature map, the anchors of every cell (as a BoxList with the official
    "visibility" field: False for anchors straddling the image border by more than
    ``straddle_thresh``; a negative threshold disables the check). The ATSS loss does not read
    the field; it is kept for code written against the official one (about 0.2 ms per 800x1333
    image on the CPU)."""

    def __init__(self, sizes=(128, 256, 512), aspect_ratios=(0.5, 1.0, 2.0), anchor_strides=(8, 16, 32),
                 straddle_thresh=0, plus_one=1):
        super().__init__()
        if plus_one and len(anchor_strides) == 1:
            cell_anchors = [generate_anchors(anchor_strides[0], sizes, aspect_ratios).float()]
        else:
            if len(anchor_strides) != len(sizes):
                raise ValueError("AnchorGenerator: {} strides but {} size groups".format(len(anchor_strides),
                                                                                         len(sizes)))
            sizes = [size if isinstance(size, (tuple, list)) else (size,) for size in sizes]
            cell_anchors = [generate_anchors(stride, size, aspect_ratios).float() if plus_one
                            else generate_centred_anchors(size, aspect_ratios)
                            for stride, size in zip(anchor_strides, sizes)]
        self.strides = anchor_strides
        self.cell_anchors = BufferList(cell_anchors)
        self.straddle_thresh = straddle_thresh
        self.plus_one = 1 if plus_one else 0
        self._grid_cache = {}

    def num_anchors_per_location(self):
        return [len(cell) for cell in self.cell_anchors]

    def grid_anchors(self, grid_sizes):
        """Anchors of every level: [H * W * A, 4], ordered (y, x, anchor). Cached per grid size."""
        anchors = []
        for (height, width), stride, base in zip(grid_sizes, self.strides, self.cell_anchors):
            key = (int(height), int(width), stride, base.device, base.dtype)
            if key not in self._grid_cache:
                self._grid_cache[key] = anchor_grid(base, stride, int(height), int(width))
            anchors.append(self._grid_cache[key])
        return anchors

    def _visibility(self, anchors, image_width, image_height):
        t = self.straddle_thresh
        if t < 0:
            return torch.ones(anchors.shape[0], dtype=torch.bool, device=anchors.device)
        return ((anchors[:, 0] >= -t) & (anchors[:, 1] >= -t) & (anchors[:, 2] < image_width + t)
                & (anchors[:, 3] < image_height + t))

    def forward(self, image_list, feature_maps):
        grid_sizes = [tuple(fm.shape[-2:]) for fm in feature_maps]
        per_level = self.grid_anchors(grid_sizes)
        anchors = []
        for height, width in image_list.image_sizes:
            in_image = []
            for level_anchors in per_level:
                boxlist = BoxList(level_anchors, (width, height), mode="xyxy", plus_one=self.plus_one)
                boxlist.add_field("visibility", self._visibility(level_anchors, width, height))
                in_image.append(boxlist)
            anchors.append(in_image)
        return anchors


def num_anchors_per_location(config):
    """Anchors per feature-map location of the ATSS head: len(ASPECT_RATIOS) x SCALES_PER_OCTAVE."""
    atss = config.MODEL.ATSS
    return len(atss.ASPECT_RATIOS) * atss.SCALES_PER_OCTAVE


def _octave_anchor_generator(keys, plus_one, name):
    """Per level, SCALES_PER_OCTAVE sizes spaced by OCTAVE ** (i / SCALES_PER_OCTAVE)
    (``keys``: the config node ``name``, MODEL.ATSS or MODEL.RETINANET)."""
    if len(keys.ANCHOR_STRIDES) != len(keys.ANCHOR_SIZES):
        raise ValueError("{}.ANCHOR_STRIDES ({}) and ANCHOR_SIZES ({}) must have one entry per level".format(
            name, keys.ANCHOR_STRIDES, keys.ANCHOR_SIZES))
    sizes = tuple(
        tuple(size * math.pow(keys.OCTAVE, i / float(keys.SCALES_PER_OCTAVE)) for i in range(keys.SCALES_PER_OCTAVE))
        for size in keys.ANCHOR_SIZES
    )
    return AnchorGenerator(sizes, keys.ASPECT_RATIOS, keys.ANCHOR_STRIDES, keys.STRADDLE_THRESH,
                           plus_one=plus_one)


def make_anchor_generator(config):
    """The RPN's anchors (MODEL.RPN.*), as officially; the ATSS model does not use them."""
    rpn = config.MODEL.RPN
    if rpn.USE_FPN and len(rpn.ANCHOR_STRIDE) != len(rpn.ANCHOR_SIZES):
        raise ValueError("MODEL.RPN with FPN needs one ANCHOR_STRIDE per ANCHOR_SIZES entry, got {} and {}".format(
            rpn.ANCHOR_STRIDE, rpn.ANCHOR_SIZES))
    if not rpn.USE_FPN and len(rpn.ANCHOR_STRIDE) != 1:
        raise ValueError("MODEL.RPN without FPN needs a single ANCHOR_STRIDE, got {}".format(rpn.ANCHOR_STRIDE))
    return AnchorGenerator(rpn.ANCHOR_SIZES, rpn.ASPECT_RATIOS, rpn.ANCHOR_STRIDE, rpn.STRADDLE_THRESH)


def make_anchor_generator_retinanet(config):
    """RetinaNet's anchors (MODEL.RETINANET.*), as officially; the ATSS model does not use them."""
    return _octave_anchor_generator(config.MODEL.RETINANET, plus_one=1, name="MODEL.RETINANET")


def make_anchor_generator_atss(config):
    """ATSS anchors (MODEL.ATSS.*): per level, SCALES_PER_OCTAVE sizes spaced by OCTAVE ** (i / SCALES_PER_OCTAVE)."""
    return _octave_anchor_generator(config.MODEL.ATSS, plus_one=int(config.MODEL.LEGACY_PLUS_ONE), name="MODEL.ATSS")
