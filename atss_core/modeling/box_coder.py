"""The R-CNN box coder of maskrcnn-benchmark (official path and meaning): deltas
(dx, dy, dw, dh) of boxes against reference boxes, weighted by ``weights``, with widths
x2 - x1 + 1 and centres at x1 + w / 2. The ATSS head does not use it; its coder, which
centres boxes at (x1 + x2) / 2 and also regresses points, is
atss_core.modeling.rpn.atss.atss.BoxCoder(cfg)."""
import math

import torch

BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def _widths_and_centres(boxes):
    widths = boxes[:, 2] - boxes[:, 0] + 1
    heights = boxes[:, 3] - boxes[:, 1] + 1
    return widths, heights, boxes[:, 0] + 0.5 * widths, boxes[:, 1] + 0.5 * heights


class BoxCoder:
    def __init__(self, weights, bbox_xform_clip=BBOX_XFORM_CLIP):
        self.weights = weights
        self.bbox_xform_clip = bbox_xform_clip

    def encode(self, reference_boxes, proposals):
        """Deltas [N, 4] that turn ``proposals`` [N, 4] into ``reference_boxes`` [N, 4] (xyxy)."""
        pw, ph, pcx, pcy = _widths_and_centres(proposals)
        rw, rh, rcx, rcy = _widths_and_centres(reference_boxes)
        wx, wy, ww, wh = self.weights
        return torch.stack([wx * (rcx - pcx) / pw, wy * (rcy - pcy) / ph, ww * torch.log(rw / pw),
                            wh * torch.log(rh / ph)], dim=1)

    def decode(self, rel_codes, boxes):
        """Boxes [N, 4k] (xyxy) from deltas ``rel_codes`` [N, 4k] (k sets per box, e.g. one per
        class) applied to ``boxes`` [N, 4]; dw and dh are clamped at ``bbox_xform_clip``."""
        boxes = boxes.to(rel_codes.dtype)
        widths, heights, ctr_x, ctr_y = (t[:, None] for t in _widths_and_centres(boxes))
        wx, wy, ww, wh = self.weights
        dw = torch.clamp(rel_codes[:, 2::4] / ww, max=self.bbox_xform_clip)
        dh = torch.clamp(rel_codes[:, 3::4] / wh, max=self.bbox_xform_clip)
        centre_x = rel_codes[:, 0::4] / wx * widths + ctr_x
        centre_y = rel_codes[:, 1::4] / wy * heights + ctr_y
        half_w, half_h = 0.5 * torch.exp(dw) * widths, 0.5 * torch.exp(dh) * heights
        decoded = torch.stack([centre_x - half_w, centre_y - half_h, centre_x + half_w - 1, centre_y + half_h - 1],
                              dim=2)
        return decoded.reshape(rel_codes.shape)
