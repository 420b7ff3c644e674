"""Non-maximum suppression with the legacy "+1" box convention (width = x2 - x1 + 1)."""
import torch

from ._ext import _C, as_float32_if_half


def nms(boxes: torch.Tensor, scores: torch.Tensor, nms_thresh: float) -> torch.Tensor:
    """Greedy NMS.

    Args:
        boxes: [N, 4] xyxy boxes (float32 or float64).
        scores: [N] scores, same dtype and device as boxes.
        nms_thresh: a box is dropped when its IoU with a kept, higher-scored box exceeds this.
    Returns:
        int64 [K] indices of the kept boxes, by descending score.
    """
    boxes, scores = as_float32_if_half(boxes, scores)
    return _C.nms(boxes, scores, float(nms_thresh))


def ml_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, nms_thresh: float) -> torch.Tensor:
    """Multi-label NMS: like :func:`nms`, but a box only suppresses boxes with the same label.

    Args:
        labels: [N] class labels (integer or float tensor, as the official code passes floats).
    """
    boxes, scores = as_float32_if_half(boxes, scores)
    return _C.ml_nms(boxes, scores, labels, float(nms_thresh))
