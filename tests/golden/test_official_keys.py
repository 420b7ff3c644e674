"""Every official key that the post-processor, the assigner, the losses and the multi-scale
test read changes what it should, on the recorded official model (tests/data/official)."""
import os

import pytest
import torch

from atss_core.data.datasets.image_io import read_image_bgr
from atss_core.engine.bbox_aug import augmentation_runs, im_detect_bbox_aug
from atss_core.structures import to_image_list

from atss_core.modeling.rpn.anchor_generator import make_anchor_generator_atss

from .test_official_outputs import GOLDEN_DIR, build_model, input_images, load_record, make_cfg, targets_of

RECORD = "r50_frozenbn"


def detections(**overrides):
    record = load_record(RECORD)
    extra = [item for kv in overrides.items() for item in kv]
    cfg, model = build_model(record, extra)
    model.eval()
    with torch.no_grad():
        return cfg, model(to_image_list(input_images(record), cfg.DATALOADER.SIZE_DIVISIBILITY))


def training_outputs(**overrides):
    """(labels per image, losses) of the recorded training batch."""
    record = load_record(RECORD)
    cfg, model = build_model(record, [item for kv in overrides.items() for item in kv])
    batch = to_image_list(input_images(record)[:2], cfg.DATALOADER.SIZE_DIVISIBILITY)
    model.train()
    features = model.backbone(batch.tensors)
    anchors = model.rpn.anchor_generator(batch, features)
    targets = targets_of(record)
    labels, _ = model.rpn.loss_evaluator.prepare_targets(targets, anchors)
    losses = model.rpn.loss_evaluator(*model.rpn.head(features), targets, anchors)
    return labels, [loss.item() for loss in losses]


def counts(results):
    return [len(r) for r in results]


def test_post_processor_keys():
    _, base = detections(**{"TEST.DETECTIONS_PER_IMG": 1000})
    assert min(counts(base)) > 100  # uncapped, so each key below has room to act
    _, capped = detections(**{"TEST.DETECTIONS_PER_IMG": 7})
    assert counts(capped) == [7, 7, 7]
    _, strict = detections(**{"TEST.DETECTIONS_PER_IMG": 1000, "MODEL.ATSS.INFERENCE_TH": 0.3})
    assert all(s < b for s, b in zip(counts(strict), counts(base)))
    _, few = detections(**{"TEST.DETECTIONS_PER_IMG": 1000, "MODEL.ATSS.PRE_NMS_TOP_N": 3})
    assert all(c <= 3 * 5 for c in counts(few))  # at most 3 per level before NMS
    _, looser = detections(**{"TEST.DETECTIONS_PER_IMG": 1000, "MODEL.ATSS.NMS_TH": 0.9})
    assert all(l > b for l, b in zip(counts(looser), counts(base)))
    # the multi-scale test without voting takes the raw per-level boxes: no NMS, no cap
    _, raw = detections(**{"TEST.BBOX_AUG.ENABLED": True, "TEST.BBOX_AUG.VOTE": False})
    assert all(r > l for r, l in zip(counts(raw), counts(looser)))
    # with voting each run is final: NMS'd and capped like a plain test
    _, voted = detections(**{"TEST.BBOX_AUG.ENABLED": True, "TEST.BBOX_AUG.VOTE": True,
                             "TEST.DETECTIONS_PER_IMG": 1000})
    assert counts(voted) == counts(base)


def positives(labels):
    return sum(int((l > 0).sum()) for l in labels)


def test_assigner_and_loss_keys():
    labels, losses = training_outputs()
    # TOPK: fewer candidates per level, fewer positives
    fewer, _ = training_outputs(**{"MODEL.ATSS.TOPK": 3})
    assert positives(fewer) < positives(labels)
    # REG_LOSS_WEIGHT multiplies the regression loss only
    _, half = training_outputs(**{"MODEL.ATSS.REG_LOSS_WEIGHT": 1.0})
    assert half[1] == pytest.approx(losses[1] / 2, rel=1e-6)
    assert (half[0], half[2]) == pytest.approx((losses[0], losses[2]), rel=1e-6)
    # LOSS_ALPHA / LOSS_GAMMA reach the focal loss only
    _, alpha = training_outputs(**{"MODEL.ATSS.LOSS_ALPHA": 0.5})
    _, gamma = training_outputs(**{"MODEL.ATSS.LOSS_GAMMA": 0.0})
    assert alpha[0] != pytest.approx(losses[0], rel=1e-3) and alpha[1:] == pytest.approx(losses[1:], rel=1e-6)
    assert gamma[0] > losses[0] and gamma[1:] == pytest.approx(losses[1:], rel=1e-6)
    # IoU assignment: a lower FG_IOU_THRESHOLD gives more positives, a higher BG_IOU_THRESHOLD more background
    iou, _ = training_outputs(**{"MODEL.ATSS.POSITIVE_TYPE": "IoU"})
    iou_low_fg, _ = training_outputs(**{"MODEL.ATSS.POSITIVE_TYPE": "IoU", "MODEL.ATSS.FG_IOU_THRESHOLD": 0.3,
                                        "MODEL.ATSS.BG_IOU_THRESHOLD": 0.3})
    assert positives(iou_low_fg) > positives(iou)
    ignored = sum(int((l == -1).sum()) for l in iou)
    iou_no_gap, _ = training_outputs(**{"MODEL.ATSS.POSITIVE_TYPE": "IoU", "MODEL.ATSS.BG_IOU_THRESHOLD": 0.5})
    assert sum(int((l == -1).sum()) for l in iou_no_gap) < ignored


def test_anchor_keys():
    record = load_record(RECORD)
    images = to_image_list(input_images(record)[:1], 32)
    features = [torch.zeros(1, 1, 128 // s, 160 // s) for s in (8, 16, 32, 64, 128)]

    def anchors(**overrides):
        # a fresh generator: loading a checkpoint restores the cell anchors it holds (as officially)
        cfg = make_cfg(record, [item for kv in overrides.items() for item in kv])
        return make_anchor_generator_atss(cfg)(images, features)[0]

    base = anchors()
    bigger = anchors(**{"MODEL.ATSS.ANCHOR_SIZES": (32, 64, 128, 256, 512)})
    w = lambda a: (a.bbox[:, 2] - a.bbox[:, 0] + 1)  # noqa: E731
    assert w(bigger[0]).unique().tolist() == [32.0] and w(base[0]).unique().tolist() == [64.0]
    octave = anchors(**{"MODEL.ATSS.SCALES_PER_OCTAVE": 2, "MODEL.ATSS.OCTAVE": 4.0})
    assert w(octave[0])[:2].tolist() == [64.0, 128.0]
    # ANCHOR_STRIDES: the grid step of each level (feature maps fixed, so only the step changes)
    strided = anchors(**{"MODEL.ATSS.ANCHOR_STRIDES": (4, 16, 32, 64, 128)})
    assert (base[0].bbox[1] - base[0].bbox[0]).tolist() == [8.0, 0.0, 8.0, 0.0]
    assert (strided[0].bbox[1] - strided[0].bbox[0]).tolist() == [4.0, 0.0, 4.0, 0.0]
    ratios = anchors(**{"MODEL.ATSS.ASPECT_RATIOS": (0.5, 1.0, 2.0)})
    assert len(ratios[0]) == 3 * len(base[0])
    assert base[0].get_field("visibility").sum() < anchors(**{"MODEL.ATSS.STRADDLE_THRESH": 64})[0].get_field(
        "visibility").sum()


def test_multi_scale_test_keys():
    record = load_record(RECORD)
    tta = list(load_record(RECORD)["tta"]["overrides"])
    cfg, model = build_model(record, tta + ["TEST.BBOX_AUG.VOTE", True])
    model.eval()
    images = [read_image_bgr(os.path.join(GOLDEN_DIR, record["image_files"][0]))]

    def run(**overrides):
        local = cfg.clone()
        local.merge_from_list([item for kv in overrides.items() for item in kv])
        return im_detect_bbox_aug(model, images, torch.device("cpu"), local)[0]

    base = run()
    assert len(base) == 150  # capped at MODEL.ATSS.PRE_NMS_TOP_N in the vote path
    assert len(run(**{"MODEL.ATSS.PRE_NMS_TOP_N": 40})) == 40
    loose_vote = run(**{"TEST.BBOX_AUG.VOTE_TH": 0.3, "MODEL.ATSS.PRE_NMS_TOP_N": 10000})
    tight_vote = run(**{"TEST.BBOX_AUG.VOTE_TH": 0.9, "MODEL.ATSS.PRE_NMS_TOP_N": 10000})
    assert len(loose_vote) < len(tight_vote)
    soft = run(**{"TEST.BBOX_AUG.MERGE_TYPE": "soft-vote", "MODEL.ATSS.PRE_NMS_TOP_N": 10000})
    hard = run(**{"TEST.BBOX_AUG.MERGE_TYPE": "vote", "MODEL.ATSS.PRE_NMS_TOP_N": 10000})
    assert len(soft) > len(hard)
    # runs: flips, scales, their maximum sizes and ranges
    local = cfg.clone()
    assert len(augmentation_runs(local)) == 6
    local.merge_from_list(["TEST.BBOX_AUG.H_FLIP", False, "TEST.BBOX_AUG.SCALE_H_FLIP", False])
    assert [r[2] for r in augmentation_runs(local)] == [False, False, False]
    local.merge_from_list(["TEST.BBOX_AUG.SCALES", (900,), "TEST.BBOX_AUG.SCALE_RANGES", [[0, 50]],
                           "TEST.BBOX_AUG.MAX_SIZE", 999])
    assert augmentation_runs(local)[-1] == (900, 999, False, (0, 50))
    # each run adds boxes: dropping the flips or an extra scale leaves fewer after voting
    uncapped = {"MODEL.ATSS.PRE_NMS_TOP_N": 10000}
    full = run(**uncapped)
    assert len(run(**dict(uncapped, **{"TEST.BBOX_AUG.H_FLIP": False}))) < len(full)
    assert len(run(**dict(uncapped, **{"TEST.BBOX_AUG.SCALE_H_FLIP": False}))) < len(full)
    # MAX_SIZE caps the extra scales of 800 and more (below 800 INPUT.MAX_SIZE_TEST does)
    big = dict(uncapped, **{"TEST.BBOX_AUG.SCALES": (96, 900), "TEST.BBOX_AUG.SCALE_RANGES": [[0, 10000]] * 2,
                            "TEST.BBOX_AUG.SCALE_H_FLIP": False, "TEST.BBOX_AUG.H_FLIP": False})
    capped_run = run(**dict(big, **{"TEST.BBOX_AUG.MAX_SIZE": 200}))
    assert len(capped_run) != len(run(**dict(big, **{"TEST.BBOX_AUG.MAX_SIZE": 1300})))
    narrow = run(**{"TEST.BBOX_AUG.SCALE_RANGES": [[0, 1], [0, 1]], "MODEL.ATSS.PRE_NMS_TOP_N": 10000})
    wide = run(**{"TEST.BBOX_AUG.SCALE_RANGES": [[0, 10000], [0, 10000]], "MODEL.ATSS.PRE_NMS_TOP_N": 10000})
    assert len(narrow) < len(wide)
