"""Flattening of per-level dense predictions into [N * sum(H*W*A), C] rows, in the
(level, y, x, anchor) order that the concatenated anchors use."""
import torch


def permute_and_flatten(layer, N, A, C, H, W):
    """[N, A*C, H, W] -> [N, H*W*A, C]."""
    return layer.view(N, A, C, H, W).permute(0, 3, 4, 1, 2).reshape(N, -1, C)


def concat_box_prediction_layers(box_cls, box_regression):
    """Per-level cls [N, A*C, H, W] and regression [N, A*4, H, W] -> [R, C] and [R, 4]."""
    cls_flat, reg_flat = [], []
    num_classes = None
    for cls_level, reg_level in zip(box_cls, box_regression):
        N, AxC, H, W = cls_level.shape
        A = reg_level.shape[1] // 4
        num_classes = AxC // A
        cls_flat.append(permute_and_flatten(cls_level, N, A, num_classes, H, W))
        reg_flat.append(permute_and_flatten(reg_level, N, A, 4, H, W))
    return torch.cat(cls_flat, dim=1).reshape(-1, num_classes), torch.cat(reg_flat, dim=1).reshape(-1, 4)
