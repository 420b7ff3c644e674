"""Box coding of the ATSS head (legacy +1 widths, centres at (x1 + x2) / 2; with
MODEL.LEGACY_PLUS_ONE False, widths x2 - x1 and dw/dh clamped on both sides, as mmdetection's
DeltaXYWHBBoxCoder).

REGRESSION_TYPE "BOX": (dx, dy, dw, dh) deltas against the anchor, weighted (10, 10, 5, 5),
with dw/dh clamped at log(1000 / 16) when decoding.
REGRESSION_TYPE "POINT": distances (left, top, right, bottom) from the anchor centre,
in units of anchor size / (ANCHOR_SIZES[0] / ANCHOR_STRIDES[0]).
"""
import math

import torch

TO_REMOVE = 1
BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def _size_and_centre(boxes, plus_one=TO_REMOVE):
    widths = boxes[:, 2] - boxes[:, 0] + plus_one
    heights = boxes[:, 3] - boxes[:, 1] + plus_one
    ctr_x = (boxes[:, 2] + boxes[:, 0]) / 2
    ctr_y = (boxes[:, 3] + boxes[:, 1]) / 2
    return widths, heights, ctr_x, ctr_y


class BoxCoder:
    def __init__(self, cfg):
        atss = cfg.MODEL.ATSS
        if atss.REGRESSION_TYPE not in ("BOX", "POINT"):
            raise ValueError("MODEL.ATSS.REGRESSION_TYPE must be 'BOX' or 'POINT', got {!r}".format(
                atss.REGRESSION_TYPE))
        self.regression_type = atss.REGRESSION_TYPE
        # POINT: the anchor-size unit of the first level (8 for the default 64 / 8)
        self.point_unit = float(atss.ANCHOR_SIZES[0]) / float(atss.ANCHOR_STRIDES[0])
        self.plus_one = TO_REMOVE if cfg.MODEL.LEGACY_PLUS_ONE else 0

    def encode(self, gt_boxes, anchors):
        """Regression targets [N, 4] of xyxy ``gt_boxes`` [N, 4] against ``anchors`` [N, 4]."""
        aw, ah, acx, acy = _size_and_centre(anchors, self.plus_one)
        if self.regression_type == "POINT":
            u = self.point_unit
            return torch.stack([u * (acx - gt_boxes[:, 0]) / aw, u * (acy - gt_boxes[:, 1]) / ah,
                                u * (gt_boxes[:, 2] - acx) / aw, u * (gt_boxes[:, 3] - acy) / ah], dim=1)
        gw, gh, gcx, gcy = _size_and_centre(gt_boxes, self.plus_one)
        wx, wy, ww, wh = BOX_WEIGHTS
        return torch.stack([wx * (gcx - acx) / aw, wy * (gcy - acy) / ah, ww * torch.log(gw / aw),
                            wh * torch.log(gh / ah)], dim=1)

    def decode(self, preds, anchors):
        """xyxy boxes [N, 4] from regression outputs ``preds`` [N, 4] and ``anchors`` [N, 4]."""
        anchors = anchors.to(preds.dtype)
        aw, ah, acx, acy = _size_and_centre(anchors, self.plus_one)
        if self.regression_type == "POINT":
            u = self.point_unit
            return torch.stack([acx - preds[:, 0] / u * aw, acy - preds[:, 1] / u * ah,
                                acx + preds[:, 2] / u * aw, acy + preds[:, 3] / u * ah], dim=1)
        wx, wy, ww, wh = BOX_WEIGHTS
        dx, dy = preds[:, 0] / wx, preds[:, 1] / wy
        low = None if self.plus_one else -BBOX_XFORM_CLIP
        dw = torch.clamp(preds[:, 2] / ww, min=low, max=BBOX_XFORM_CLIP)
        dh = torch.clamp(preds[:, 3] / wh, min=low, max=BBOX_XFORM_CLIP)
        ctr_x, ctr_y = dx * aw + acx, dy * ah + acy
        w, h = torch.exp(dw) * aw, torch.exp(dh) * ah
        if not self.plus_one:
            return torch.stack([ctr_x - 0.5 * w, ctr_y - 0.5 * h, ctr_x + 0.5 * w, ctr_y + 0.5 * h], dim=1)
        return torch.stack([ctr_x - 0.5 * (w - 1), ctr_y - 0.5 * (h - 1), ctr_x + 0.5 * (w - 1),
                            ctr_y + 0.5 * (h - 1)], dim=1)
