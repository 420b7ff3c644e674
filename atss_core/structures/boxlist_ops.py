"""Operations on BoxLists: IoU, concatenation, NMS and filtering (legacy +1 convention)."""
import torch

from atss_core.layers import ml_nms as _box_ml_nms
from atss_core.layers import nms as _box_nms

from .bounding_box import TO_REMOVE, BoxList


def boxlist_nms(boxlist, nms_thresh, max_proposals=-1, score_field="scores"):
    """Keeps the boxes that survive NMS on ``score_field``, at most ``max_proposals`` (all if <= 0)."""
    if nms_thresh <= 0:
        return boxlist
    mode = boxlist.mode
    boxlist = boxlist.convert("xyxy")
    keep = _box_nms(boxlist.bbox, boxlist.get_field(score_field), nms_thresh)
    if max_proposals > 0:
        keep = keep[:max_proposals]
    return boxlist[keep].convert(mode)


def boxlist_ml_nms(boxlist, nms_thresh, max_proposals=-1, score_field="scores", label_field="labels",
                   class_agnostic=False):
    """Like :func:`boxlist_nms`, but boxes only suppress boxes with the same ``label_field``
    (any box with ``class_agnostic``). The kept boxes stay in their input order, as the official
    kernel returns them (the order in which the multi-scale test then concatenates and votes)."""
    if nms_thresh <= 0:
        return boxlist
    mode = boxlist.mode
    boxlist = boxlist.convert("xyxy")
    labels = boxlist.get_field(label_field)
    if class_agnostic:
        labels = torch.zeros_like(labels)
    keep = _box_ml_nms(boxlist.bbox, boxlist.get_field(score_field), labels, nms_thresh)
    if max_proposals > 0:
        keep = keep[:max_proposals]
    return boxlist[keep.sort().values].convert(mode)


def keep_top_detections(boxlist, detections_per_img):
    """The ``detections_per_img`` best boxes (all boxes tied with the last one kept)."""
    count = len(boxlist)
    if not count > detections_per_img > 0:
        return boxlist
    scores = boxlist.get_field("scores")
    image_thresh, _ = torch.kthvalue(scores.cpu(), count - detections_per_img + 1)
    return boxlist[torch.nonzero(scores >= image_thresh.item()).squeeze(1)]


def remove_small_boxes(boxlist, min_size):
    """Drops boxes whose width or height (with the +1 convention) is below ``min_size``."""
    _, _, ws, hs = boxlist.convert("xywh").bbox.unbind(dim=1)
    keep = ((ws >= min_size) & (hs >= min_size)).nonzero().squeeze(1)
    return boxlist[keep]


def box_iou_legacy(boxes1, boxes2, plus_one=TO_REMOVE):
    """[N, M] IoU of xyxy boxes [N, 4] and [M, 4] with the legacy +1 convention (or ``plus_one`` 0)."""
    return paired_box_iou_legacy(boxes1[:, None, :], boxes2[None, :, :], plus_one)


def paired_box_iou_legacy(boxes1, boxes2, plus_one=TO_REMOVE):
    """IoU of xyxy boxes [..., 4] and [..., 4] paired by broadcasting (+1 convention unless
    ``plus_one`` is 0); the same float operations as :func:`box_iou_legacy`, so the same pair
    gives the same bits."""
    area1 = (boxes1[..., 2] - boxes1[..., 0] + plus_one) * (boxes1[..., 3] - boxes1[..., 1] + plus_one)
    area2 = (boxes2[..., 2] - boxes2[..., 0] + plus_one) * (boxes2[..., 3] - boxes2[..., 1] + plus_one)
    lt = torch.max(boxes1[..., :2], boxes2[..., :2])
    rb = torch.min(boxes1[..., 2:], boxes2[..., 2:])
    wh = (rb - lt + plus_one).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area1 + area2 - inter)


def boxlist_iou(boxlist1, boxlist2):
    """[N, M] IoU between the boxes of two BoxLists of the same image."""
    if boxlist1.size != boxlist2.size:
        raise ValueError("boxlist_iou: boxlists must describe the same image, got sizes {} and {}".format(
            boxlist1.size, boxlist2.size))
    return box_iou_legacy(boxlist1.convert("xyxy").bbox, boxlist2.convert("xyxy").bbox, boxlist1.plus_one)


def _cat(tensors, dim=0):
    """torch.cat that avoids a copy for a single tensor."""
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat(tensors, dim)


def cat_boxlist(bboxes):
    """Concatenates BoxLists of the same image, mode and fields into one."""
    if not isinstance(bboxes, (list, tuple)) or not bboxes or not all(isinstance(b, BoxList) for b in bboxes):
        raise TypeError("cat_boxlist: expected a non-empty list of BoxList")
    size, mode, fields = bboxes[0].size, bboxes[0].mode, set(bboxes[0].fields())
    for b in bboxes[1:]:
        if b.size != size:
            raise ValueError("cat_boxlist: image sizes differ: {} vs {}".format(size, b.size))
        if b.mode != mode:
            raise ValueError("cat_boxlist: modes differ: {} vs {}".format(mode, b.mode))
        if set(b.fields()) != fields:
            raise ValueError("cat_boxlist: fields differ: {} vs {}".format(sorted(fields), sorted(b.fields())))
    cat_boxes = BoxList(_cat([b.bbox for b in bboxes], dim=0), size, mode, bboxes[0].plus_one)
    for field in fields:
        cat_boxes.add_field(field, _cat([b.get_field(field) for b in bboxes], dim=0))
    return cat_boxes


# a training target's boolean field that marks ignore regions (MODEL.ATSS.IGNORE_CROWD)
IGNORE_FIELD = "ignore"


def split_ignore_regions(target):
    """(objects, ignore regions) of a training target; the regions are None when it has none."""
    if not target.has_field(IGNORE_FIELD):
        return target, None
    flags = target.get_field(IGNORE_FIELD)
    return target[~flags], target[flags]
