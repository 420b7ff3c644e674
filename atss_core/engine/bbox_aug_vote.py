"""Merging the detections of several test-time transforms of one image: box voting.

Both merges work on the boxes of one class, greedily from the highest score: the boxes whose
IoU with the current best remaining box is at least ``vote_thresh`` form its cluster and leave the
pool. ``bbox_vote`` replaces a cluster by one box, the score-weighted mean of its members, with
the best member's score. ``soft_bbox_vote`` does the same and also keeps the other members with
their scores decayed by (1 - IoU with the best box) when that stays >= ``score_th``.

The official names and signatures (``boxlist_nms``, ``merge_result_from_multi_scales``,
``remove_boxes``, ``im_detect_bbox_aug_vote``) are kept; the runs themselves are in bbox_aug.py.
"""
import torch

from atss_core.structures.bounding_box import BoxList
from atss_core.structures import boxlist_ops
from atss_core.structures.boxlist_ops import box_iou_legacy, boxlist_ml_nms, cat_boxlist, keep_top_detections


def _vote_clusters(boxes, scores, vote_thresh):
    """(boxes and scores sorted by descending score, clusters): each cluster is (member indices
    into the sorted boxes, their IoU with the cluster's best box), best clusters first."""
    order = scores.argsort(descending=True)
    boxes, scores = boxes[order], scores[order]
    iou = box_iou_legacy(boxes, boxes)
    remaining = torch.ones(len(boxes), dtype=torch.bool, device=boxes.device)
    clusters = []
    for best in range(len(boxes)):
        if not remaining[best]:
            continue
        members = remaining & (iou[best] >= vote_thresh)
        members[best] = True  # a degenerate box still forms its own cluster
        remaining &= ~members
        indices = members.nonzero().squeeze(1)
        clusters.append((indices, iou[best, indices]))
    return boxes, scores, clusters


def _weighted_mean_box(boxes, scores):
    if len(boxes) == 1:  # a lone box stays exactly as it is
        return boxes[0]
    return (boxes * scores[:, None]).sum(0) / scores.sum()


def bbox_vote(boxes, scores, vote_thresh):
    """[N, 4] xyxy boxes and [N] scores -> merged (boxes, scores), by descending score."""
    if len(boxes) == 0:
        return boxes, scores
    boxes, scores, clusters = _vote_clusters(boxes, scores, vote_thresh)
    merged_boxes = torch.stack([_weighted_mean_box(boxes[idx], scores[idx]) for idx, _ in clusters])
    merged_scores = torch.stack([scores[idx].max() for idx, _ in clusters])
    return merged_boxes, merged_scores


def soft_bbox_vote(boxes, scores, vote_thresh, score_th=0.05):
    """Like :func:`bbox_vote`, plus each cluster's members with scores decayed by
    (1 - IoU with the cluster's best box), kept when the decayed score is >= ``score_th``
    (MODEL.ATSS.INFERENCE_TH when called by the multi-scale test)."""
    if len(boxes) == 0:
        return boxes, scores
    boxes, scores, clusters = _vote_clusters(boxes, scores, vote_thresh)
    out_boxes, out_scores = [], []
    for idx, iou_with_best in clusters:
        if len(idx) == 1:
            out_boxes.append(boxes[idx])
            out_scores.append(scores[idx])
            continue
        out_boxes.append(_weighted_mean_box(boxes[idx], scores[idx])[None])
        out_scores.append(scores[idx].max()[None])
        decayed = scores[idx] * (1 - iou_with_best)
        keep = decayed >= score_th
        out_boxes.append(boxes[idx][keep])
        out_scores.append(decayed[keep])
    merged_boxes, merged_scores = torch.cat(out_boxes), torch.cat(out_scores)
    order = merged_scores.argsort(descending=True)
    return merged_boxes[order], merged_scores[order]


MERGE_TYPES = ("nms", "vote", "soft-vote")


def boxlist_nms(boxlist, nms_thresh, max_proposals=-1, score_field="scores", nms_type="nms", vote_thresh=0.65,
                score_th=0.05):
    """The boxes of one class merged by ``nms_type``: "nms" (NMS at ``nms_thresh``, at most
    ``max_proposals`` kept when > 0), "vote" or "soft-vote" (:func:`bbox_vote`,
    :func:`soft_bbox_vote` at ``vote_thresh``); nothing is merged when ``nms_thresh`` <= 0, as
    officially. Returns a BoxList with ``score_field`` only."""
    if nms_thresh <= 0:
        return boxlist
    if nms_type == "nms":
        return boxlist_ops.boxlist_nms(boxlist, nms_thresh, max_proposals, score_field)
    mode = boxlist.mode
    boxlist = boxlist.convert("xyxy")
    vote = bbox_vote if nms_type == "vote" else lambda b, s, t: soft_bbox_vote(b, s, t, score_th)
    boxes, scores = vote(boxlist.bbox, boxlist.get_field(score_field), vote_thresh)
    result = BoxList(boxes, boxlist.size, mode="xyxy")
    result.add_field(score_field, scores)
    return result.convert(mode)


def merge_detections(boxlist, nms_th, detections_per_img, vote=False, vote_th=0.66, merge_type="vote",
                     score_th=0.05, num_classes=None, vote_detections_per_img=None):
    """All the detections of one image (from every transform, in one frame, with ``scores`` and
    ``labels``) -> the final detections.

    ``vote`` False: multi-label NMS at ``nms_th``, then the ``detections_per_img`` best.
    ``vote`` True: per class 1 .. ``num_classes`` - 1 (every label present when None), in class
    order: ``merge_type`` "nms" (NMS at ``nms_th``), "vote" or "soft-vote" (nothing is merged when
    ``nms_th`` <= 0, as officially), then the ``vote_detections_per_img`` best (the official
    code bounds this cap by MODEL.ATSS.PRE_NMS_TOP_N)."""
    if vote and merge_type not in MERGE_TYPES:  # only the vote path reads it
        raise ValueError("TEST.BBOX_AUG.MERGE_TYPE must be one of {}, got {!r}".format(
            ", ".join(MERGE_TYPES), merge_type))
    boxlist = boxlist.convert("xyxy").copy_with_fields(["scores", "labels"])
    if not vote:
        return keep_top_detections(boxlist_ml_nms(boxlist, nms_th), detections_per_img)
    labels, scores = boxlist.get_field("labels"), boxlist.get_field("scores")
    classes = range(1, num_classes) if num_classes is not None else labels.unique(sorted=True).tolist()
    per_class = []
    for label in classes:
        inds = (labels == label).nonzero().squeeze(1)
        result = BoxList(boxlist.bbox[inds], boxlist.size, mode="xyxy")
        result.add_field("scores", scores[inds])
        result = boxlist_nms(result, nms_th, nms_type=merge_type, vote_thresh=vote_th, score_th=score_th)
        result.add_field("labels", torch.full((len(result),), label, dtype=labels.dtype, device=labels.device))
        per_class.append(result)
    if not per_class:
        return boxlist
    cap = detections_per_img if vote_detections_per_img is None else vote_detections_per_img
    return keep_top_detections(cat_boxlist(per_class), cap)


def remove_boxes(boxlist_ts, min_scale, max_scale):
    """Per BoxList of ``boxlist_ts``, the boxes whose area (+1 convention) lies strictly
    between ``min_scale`` ** 2 and ``max_scale`` ** 2 (a SCALE_RANGES entry)."""
    kept = []
    for boxlist in boxlist_ts:
        mode = boxlist.mode
        boxlist = boxlist.convert("xyxy")
        area = boxlist.area()
        keep = ((area > min_scale * min_scale) & (area < max_scale * max_scale)).nonzero().squeeze(1)
        kept.append(boxlist[keep].convert(mode))
    return kept


def _config(cfg):
    if cfg is None:  # the official functions read the global config
        from atss_core.config import cfg
    return cfg


def merge_result_from_multi_scales(boxlists, nms_type="nms", vote_thresh=0.65, cfg=None):
    """The vote-path merge of each image's collected detections (one BoxList per image, every
    run in one frame): per class ``nms_type`` at MODEL.ATSS.NMS_TH, then the
    MODEL.ATSS.PRE_NMS_TOP_N best. ``cfg``: the global config when None, as officially."""
    cfg = _config(cfg)
    return [merge_detections(boxlist, cfg.MODEL.ATSS.NMS_TH, cfg.TEST.DETECTIONS_PER_IMG, vote=True,
                             vote_th=vote_thresh, merge_type=nms_type, score_th=cfg.MODEL.ATSS.INFERENCE_TH,
                             num_classes=cfg.MODEL.ATSS.NUM_CLASSES,
                             vote_detections_per_img=cfg.MODEL.ATSS.PRE_NMS_TOP_N) for boxlist in boxlists]


def im_detect_bbox_aug_vote(model, images, device, cfg=None, use_amp=False):
    """The multi-scale + flip test with box voting (TEST.BBOX_AUG.VOTE must be True in ``cfg``,
    the global config when None: the model's post-processor was built for it)."""
    from .bbox_aug import im_detect_bbox_aug

    cfg = _config(cfg)
    if not cfg.TEST.BBOX_AUG.VOTE:
        raise ValueError("im_detect_bbox_aug_vote needs TEST.BBOX_AUG.VOTE True (the model's post-processor "
                         "depends on it); im_detect_bbox_aug follows the config either way")
    return im_detect_bbox_aug(model, images, device, cfg, use_amp)


_RUNS_IN_BBOX_AUG = ("im_detect_bbox", "im_detect_bbox_hflip", "im_detect_bbox_scale")


def __getattr__(name):
    """The official module also holds the single-run functions; they live in bbox_aug.py
    (which imports this module, hence the lookup on first use)."""
    if name in _RUNS_IN_BBOX_AUG:
        from . import bbox_aug

        return getattr(bbox_aug, name)
    raise AttributeError("module {!r} has no attribute {!r}".format(__name__, name))
