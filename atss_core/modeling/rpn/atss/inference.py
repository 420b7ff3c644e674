"""ATSSPostProcessor: dense head outputs -> detections per image (official semantics)."""
import torch
from torch import nn

from atss_core.modeling.rpn.utils import permute_and_flatten
from atss_core.structures.bounding_box import BoxList
from atss_core.structures.boxlist_ops import boxlist_ml_nms, cat_boxlist, keep_top_detections, remove_small_boxes


class ATSSPostProcessor(nn.Module):
    """Per level: keep logits whose sigmoid exceeds ``pre_nms_thresh`` (at most
    ``pre_nms_top_n`` of them, ranked by cls x centerness), decode their boxes, score them
    sqrt(cls x centerness), clip, drop boxes smaller than ``min_size``; then per image,
    multi-label NMS over all levels and keep the ``fpn_post_nms_top_n`` best (k-th value
    threshold, so ties at the boundary are kept)."""

    def __init__(self, pre_nms_thresh, pre_nms_top_n, nms_thresh, fpn_post_nms_top_n, min_size, num_classes,
                 box_coder, bbox_aug_enabled=False, bbox_aug_vote=False):
        super().__init__()
        self.pre_nms_thresh = pre_nms_thresh
        self.pre_nms_top_n = pre_nms_top_n
        self.nms_thresh = nms_thresh
        self.fpn_post_nms_top_n = fpn_post_nms_top_n
        self.min_size = min_size
        self.num_classes = num_classes
        self.box_coder = box_coder
        self.bbox_aug_enabled = bbox_aug_enabled
        self.bbox_aug_vote = bbox_aug_vote

    def forward_for_single_feature_map(self, box_cls, box_regression, centerness, anchors):
        N, _, H, W = box_cls.shape
        A = box_regression.size(1) // 4
        C = box_cls.size(1) // A
        box_cls = permute_and_flatten(box_cls, N, A, C, H, W).sigmoid()
        box_regression = permute_and_flatten(box_regression, N, A, 4, H, W).reshape(N, -1, 4)
        centerness = permute_and_flatten(centerness, N, A, 1, H, W).reshape(N, -1).sigmoid()

        candidate_inds = box_cls > self.pre_nms_thresh
        pre_nms_top_n = candidate_inds.reshape(N, -1).sum(1).clamp(max=self.pre_nms_top_n)

        results = []
        for per_cls, per_centerness, per_regression, per_top_n, per_candidates, per_anchors in zip(
                box_cls, centerness, box_regression, pre_nms_top_n, candidate_inds, anchors):
            # one nonzero gives the candidates' (anchor, class) positions; cls x centerness is
            # only formed for them
            flat_locations = per_candidates.reshape(-1).nonzero().squeeze(1)
            candidate_scores = per_cls.reshape(-1)[flat_locations] * per_centerness[flat_locations // C]
            scores, top_k = candidate_scores.topk(int(per_top_n), sorted=False)
            flat_locations = flat_locations[top_k]
            box_loc, labels = flat_locations // C, flat_locations % C + 1
            detections = self.box_coder.decode(per_regression[box_loc, :].view(-1, 4),
                                               per_anchors.bbox[box_loc, :].view(-1, 4))
            boxlist = BoxList(detections, per_anchors.size, mode="xyxy")
            boxlist.add_field("labels", labels)
            boxlist.add_field("scores", torch.sqrt(scores))
            boxlist = boxlist.clip_to_image(remove_empty=False)
            results.append(remove_small_boxes(boxlist, self.min_size))
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
        results = []
        for boxlist in boxlists:
            result = boxlist_ml_nms(boxlist, self.nms_thresh)
            results.append(keep_top_detections(result, self.fpn_post_nms_top_n))
        return results


def make_atss_postprocessor(config, box_coder):
    atss = config.MODEL.ATSS
    return ATSSPostProcessor(
        pre_nms_thresh=atss.INFERENCE_TH, pre_nms_top_n=atss.PRE_NMS_TOP_N, nms_thresh=atss.NMS_TH,
        fpn_post_nms_top_n=config.TEST.DETECTIONS_PER_IMG, min_size=0, num_classes=atss.NUM_CLASSES, box_coder=box_coder,
        bbox_aug_enabled=config.TEST.BBOX_AUG.ENABLED, bbox_aug_vote=config.TEST.BBOX_AUG.VOTE,
    )
