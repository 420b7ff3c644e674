"""ATSSPostProcessor: dense head outputs -> detections per image (official semantics).

The per-level steps are module functions shared with the exported graph
(atss_core/export/onnx.py), so that both score, decode and clip the same way:
:func:`level_candidates` (flattening, sigmoid, candidate threshold, cls x centerness
ranking) and :func:`decode_candidates` (BoxCoder decoding, sqrt score, labels, clipping,
minimum size). What only the eager model does is :func:`select_candidates` (the
data-dependent compaction and top-n) and :meth:`ATSSPostProcessor.select_over_all_levels`
(ml_nms and the k-th value cap); the graph has padded fixed-size counterparts of both.

MODEL.ATSS.POSTPROCESS "mmdet" is mmdetection 3.x's post-processing instead
(:class:`MMDetPostProcessor`, eager only).
"""
import torch
import torchvision
from torch import nn

from atss_core.modeling.rpn.utils import permute_and_flatten
from atss_core.structures.bounding_box import BoxList, clip_boxes_to_image
from atss_core.structures.boxlist_ops import boxlist_ml_nms, cat_boxlist, keep_top_detections

# ranked score of a non-candidate (and of the graph's padding): below any cls x centerness,
# which is >= 0 even when it underflows to 0
SENTINEL = -1.0


def level_candidates(box_cls, box_regression, centerness, pre_nms_thresh, rank_by_cls=False):
    """One level's head outputs (logits) -> (regression [N, R, 4], candidates [N, R, C] bool,
    ranked [N, R, C], centerness [N, R]).

    ``box_cls`` [N, A * C, H, W], ``box_regression`` [N, A * 4, H, W], ``centerness``
    [N, A, H, W]; R = H * W * A rows in the anchors' (y, x, anchor) order. A candidate is a
    class whose sigmoid exceeds ``pre_nms_thresh``; ``ranked`` holds its sigmoid(cls) x
    sigmoid(centerness) (sigmoid(cls) alone with ``rank_by_cls``, mmdetection), SENTINEL where
    there is no candidate; ``centerness`` is the sigmoid."""
    N, _, H, W = box_cls.shape
    A = box_regression.size(1) // 4
    C = box_cls.size(1) // A
    box_cls = permute_and_flatten(box_cls, N, A, C, H, W).sigmoid()
    box_regression = permute_and_flatten(box_regression, N, A, 4, H, W).reshape(N, -1, 4)
    centerness = permute_and_flatten(centerness, N, A, 1, H, W).reshape(N, -1).sigmoid()
    candidates = box_cls > pre_nms_thresh
    ranked = torch.where(candidates, box_cls if rank_by_cls else box_cls * centerness[:, :, None], SENTINEL)
    return box_regression, candidates, ranked, centerness


def select_candidates(candidates, ranked, pre_nms_top_n, sort=False):
    """Eager selection, as the official code: per image the compacted list of candidates, and
    of it at most ``pre_nms_top_n`` by ranked score (topk sorted=False, the detections keep
    that order; with ``sort``, in descending order as mmdetection). ``candidates``, ``ranked``
    [N, R, C] -> per image (flat index r * C + c [k], ranked [k]). The exported graph cannot
    compact (data-dependent sizes): it takes a padded fixed k instead (export/onnx.py:
    select_candidates_padded)."""
    N = candidates.shape[0]
    pre_nms_top_n = candidates.reshape(N, -1).sum(1).clamp(max=pre_nms_top_n)
    selected = []
    for per_candidates, per_ranked, per_top_n in zip(candidates, ranked, pre_nms_top_n):
        locations = per_candidates.reshape(-1).nonzero().squeeze(1)
        if sort:
            scores, order = per_ranked.reshape(-1)[locations].sort(descending=True)
            scores, top_k = scores[:int(per_top_n)], order[:int(per_top_n)]
        else:
            scores, top_k = per_ranked.reshape(-1)[locations].topk(int(per_top_n), sorted=False)
        selected.append((locations[top_k], scores))
    return selected


def decode_candidates(box_coder, box_regression, anchors, locations, ranked, num_classes, width, height, min_size,
                      centerness=None, plus_one=1):
    """Detections of the selected candidates of one level -> (boxes [..., k, 4], scores [..., k],
    labels [..., k], large [..., k] bool).

    ``box_regression`` [..., R, 4] (one image, or a batch [N, R, 4]) and ``anchors`` [R, 4];
    ``locations`` [..., k] flat indices r * C + c with ``ranked`` [..., k] their ranked score.
    Boxes are decoded by ``box_coder`` and clipped to the ``width`` x ``height`` image (to
    W - ``plus_one``); labels 1..C. Official (``centerness`` None): ranked is cls x centerness,
    the score its square root, ``large`` a width and height + 1 of at least ``min_size``.
    mmdetection (``centerness`` [..., R] given, ranked is cls): the score is cls x centerness
    and ``large`` a width and height above ``min_size``."""
    rows = torch.div(locations, num_classes, rounding_mode="floor")
    labels = locations - rows * num_classes + 1
    deltas = torch.gather(box_regression, -2, rows.unsqueeze(-1).expand(*([-1] * rows.dim()), 4))
    boxes = box_coder.decode(deltas.reshape(-1, 4), anchors[rows.reshape(-1)]).reshape(deltas.shape)
    boxes = clip_boxes_to_image(boxes, width, height, plus_one)
    widths, heights = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    if centerness is None:
        scores = torch.sqrt(ranked)
        large = (widths + 1 >= min_size) & (heights + 1 >= min_size)
    else:
        scores = ranked * torch.gather(centerness, -1, rows)
        large = (widths > min_size) & (heights > min_size)
    return boxes, scores, labels, large


class ATSSPostProcessor(nn.Module):
    """Per level: keep logits whose sigmoid exceeds ``pre_nms_thresh`` (at most
    ``pre_nms_top_n`` of them, ranked by cls x centerness), decode their boxes, score them
    sqrt(cls x centerness), clip, drop boxes smaller than ``min_size``; then per image,
    multi-label NMS over all levels and keep the ``fpn_post_nms_top_n`` best (k-th value
    threshold, so ties at the boundary are kept). The number of classes comes from the head
    outputs' shapes; ``num_classes`` (MODEL.ATSS.NUM_CLASSES, background included) is kept as
    officially, where it is not read either. ``nms_class_agnostic`` (MODEL.ATSS.NMS_CLASS_AGNOSTIC):
    a box suppresses overlapping boxes of every class, not only its own."""

    def __init__(self, pre_nms_thresh, pre_nms_top_n, nms_thresh, fpn_post_nms_top_n, min_size, num_classes,
                 box_coder, bbox_aug_enabled=False, bbox_aug_vote=False, nms_class_agnostic=False):
        super().__init__()
        self.num_classes = num_classes
        self.pre_nms_thresh = pre_nms_thresh
        self.pre_nms_top_n = pre_nms_top_n
        self.nms_thresh = nms_thresh
        self.fpn_post_nms_top_n = fpn_post_nms_top_n
        self.min_size = min_size
        self.box_coder = box_coder
        self.bbox_aug_enabled = bbox_aug_enabled
        self.bbox_aug_vote = bbox_aug_vote
        self.nms_class_agnostic = nms_class_agnostic

    # mmdetection's variant (MMDetPostProcessor) ranks by cls alone, sorted, scores cls x centerness
    mmdet = False

    def forward_for_single_feature_map(self, box_cls, box_regression, centerness, anchors):
        """One level (head outputs [N, A * C, H, W], [N, A * 4, H, W], [N, A, H, W]; a BoxList
        of anchors per image) -> a BoxList of candidate detections per image."""
        box_regression, candidates, ranked, centerness = level_candidates(
            box_cls, box_regression, centerness, self.pre_nms_thresh, rank_by_cls=self.mmdet)
        num_classes = ranked.shape[-1]
        results = []
        selected = select_candidates(candidates, ranked, self.pre_nms_top_n, sort=self.mmdet)
        for per_regression, per_centerness, per_anchors, (locations, scores) in zip(
                box_regression, centerness, anchors, selected):
            width, height = per_anchors.size
            boxes, scores, labels, large = decode_candidates(
                self.box_coder, per_regression, per_anchors.bbox, locations, scores, num_classes, width, height,
                self.min_size, centerness=per_centerness if self.mmdet else None, plus_one=per_anchors.plus_one)
            boxlist = BoxList(boxes, per_anchors.size, mode="xyxy", plus_one=per_anchors.plus_one)
            boxlist.add_field("labels", labels)
            boxlist.add_field("scores", scores)
            results.append(boxlist[large.nonzero().squeeze(1)])
        return results

    def forward(self, box_cls, box_regression, centerness, anchors):
        """Head outputs per level and anchors per image (list of per-level BoxLists) -> BoxList per image."""
        per_level = [self.forward_for_single_feature_map(o, b, c, a)
                     for o, b, c, a in zip(box_cls, box_regression, centerness, zip(*anchors))]
        boxlists = [cat_boxlist(list(per_image)) for per_image in zip(*per_level)]
        if self.bbox_aug_enabled and not self.bbox_aug_vote:
            return boxlists  # test-time augmentation merges the raw boxes itself
        return self.select_over_all_levels(boxlists)

    def select_over_all_levels(self, boxlists):
        """Eager final selection: the ml_nms kernel (kept boxes in input order), then the k-th
        value cap that keeps ties. The exported graph has ONNX NonMaxSuppression and a padded
        top-k instead (export/onnx.py: multi_label_nms_padded, keep_top_padded)."""
        results = []
        for boxlist in boxlists:
            result = boxlist_ml_nms(boxlist, self.nms_thresh, class_agnostic=self.nms_class_agnostic)
            results.append(keep_top_detections(result, self.fpn_post_nms_top_n))
        return results


class MMDetPostProcessor(ATSSPostProcessor):
    """mmdetection 3.x's ATSS post-processing (BaseDenseHead._predict_by_feat_single and
    _bbox_post_process): per level, the (location, class) pairs whose sigmoid exceeds
    ``pre_nms_thresh``, the ``pre_nms_top_n`` best by class score alone (sorted), decoded and
    clipped to the image; score = cls x centerness (no square root); boxes with no width or
    height dropped; class-wise NMS as mmcv's batched_nms (boxes offset by class, no +1); the
    ``fpn_post_nms_top_n`` best by score, in descending order. ``nms_class_agnostic``: one NMS
    over all classes (mmcv's ``class_agnostic`` nms_cfg)."""

    mmdet = True

    def select_over_all_levels(self, boxlists):
        results = []
        for boxlist in boxlists:
            classes = boxlist.get_field("labels") - 1
            if self.nms_class_agnostic:
                classes = torch.zeros_like(classes)
            keep = class_wise_nms(boxlist.bbox, boxlist.get_field("scores"), classes, self.nms_thresh)
            results.append(boxlist[keep[:self.fpn_post_nms_top_n]])
        return results


# mmcv's batched_nms switches from the class-offset trick to a loop over classes here
CLASS_WISE_NMS_SPLIT = 10000


def class_wise_nms(boxes, scores, classes, iou_threshold):
    """Indices kept by NMS within each class (no +1), by descending score, as mmcv.ops.batched_nms
    computes them (the eager mmdetection post-processing and the exporter's eager NMS)."""
    if len(boxes) == 0:  # boxes.max() needs a box
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    if len(boxes) < CLASS_WISE_NMS_SPLIT:
        offsets = classes.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
        return torchvision.ops.nms(boxes + offsets[:, None], scores, iou_threshold)
    keep = torch.zeros_like(scores, dtype=torch.bool)
    for label in torch.unique(classes):
        members = (classes == label).nonzero().view(-1)
        keep[members[torchvision.ops.nms(boxes[members], scores[members], iou_threshold)]] = True
    kept = keep.nonzero().view(-1)
    return kept[scores[kept].argsort(descending=True)]


POSTPROCESSORS = ("official", "mmdet")


def make_atss_postprocessor(config, box_coder):
    atss = config.MODEL.ATSS
    if atss.POSTPROCESS not in POSTPROCESSORS:
        raise ValueError("MODEL.ATSS.POSTPROCESS must be one of {}, got {!r}".format(POSTPROCESSORS,
                                                                                    atss.POSTPROCESS))
    if config.TEST.BBOX_AUG.ENABLED and (atss.POSTPROCESS == "mmdet" or not config.MODEL.LEGACY_PLUS_ONE):
        # its merging and voting are the official code's, in the +1 convention
        raise ValueError("TEST.BBOX_AUG (the official multi-scale test) needs the official conventions: "
                         "MODEL.ATSS.POSTPROCESS 'official' and MODEL.LEGACY_PLUS_ONE True")
    if config.TEST.BBOX_AUG.ENABLED and atss.NMS_CLASS_AGNOSTIC:
        raise ValueError("MODEL.ATSS.NMS_CLASS_AGNOSTIC is not supported with TEST.BBOX_AUG: the multi-scale "
                         "test merges (and votes) class by class, as officially")
    postprocessor = MMDetPostProcessor if atss.POSTPROCESS == "mmdet" else ATSSPostProcessor
    return postprocessor(
        pre_nms_thresh=atss.INFERENCE_TH, pre_nms_top_n=atss.PRE_NMS_TOP_N, nms_thresh=atss.NMS_TH,
        fpn_post_nms_top_n=config.TEST.DETECTIONS_PER_IMG, min_size=0, num_classes=atss.NUM_CLASSES,
        box_coder=box_coder,
        bbox_aug_enabled=config.TEST.BBOX_AUG.ENABLED, bbox_aug_vote=config.TEST.BBOX_AUG.VOTE,
        nms_class_agnostic=atss.NMS_CLASS_AGNOSTIC,
    )
