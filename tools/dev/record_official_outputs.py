#!/usr/bin/env python
"""Record reference outputs of the official ATSS code (github.com/sfzhang15/ATSS) on CPU.

    python tools/dev/record_official_outputs.py --official-repo /path/to/ATSS [--out tests/data/official]

The official package is also called ``atss_core``, so this script never imports ours: it
puts the official checkout first on ``sys.path``, gives it stand-ins for its compiled ops
(plain torch with the rules of its CUDA kernels: +1-pixel IoU, suppression above the
threshold, kept indices in input order; torchvision's deform_conv2d for its deformable
convolutions), shims for current numpy and torch, and a CPU path for its focal loss and voting. None of the official
code is copied into atss_core; only the tensors it produces are written, one ``.pt`` file per
case plus the input images (PNG, decoded identically by every library).

What is recorded (see tests/data/official/README.md): anchors, per-anchor assignment and
regression targets for every POSITIVE_TYPE x REGRESSION_TYPE, the three losses, gradients of
a few parameters, eval detections (capped, uncapped, sparse, empty), and the multi-scale test
merged by NMS, box voting, soft voting and per-class NMS.
"""
import argparse
import os
import sys
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(os.path.dirname(HERE))
SEED = 20200614
NUM_CLASSES = 5  # 4 object classes + background

# narrow networks: every layer of the real architecture, a fraction of the channels
NARROW_R50 = ["MODEL.RESNETS.WIDTH_PER_GROUP", 4, "MODEL.RESNETS.STEM_OUT_CHANNELS", 8,
              "MODEL.RESNETS.RES2_OUT_CHANNELS", 16, "MODEL.RESNETS.BACKBONE_OUT_CHANNELS", 32]
CASES = {
    # name: (official config file, overrides, the POSITIVE_TYPE x REGRESSION_TYPE pairs to record)
    "r50_frozenbn": ("configs/atss/atss_R_50_FPN_1x.yaml", NARROW_R50,
                     [(p, r) for r in ("BOX", "POINT") for p in ("ATSS", "SSC", "IoU", "TOPK")]),
    "r50_gn": ("configs/atss/atss_R_50_FPN_1x.yaml", NARROW_R50 + [
        "MODEL.RESNETS.TRANS_FUNC", "BottleneckWithGN", "MODEL.RESNETS.STEM_FUNC", "StemWithGN",
        "MODEL.GROUP_NORM.NUM_GROUPS", 4, "MODEL.FPN.USE_GN", True, "MODEL.RETINANET.USE_C5", False],
               [("ATSS", "BOX")]),
    # DCNv2 in stages 3-5 and in the last conv of each head tower
    "r50_dcnv2": ("configs/atss/atss_dcnv2_R_50_FPN_1x.yaml", NARROW_R50, [("ATSS", "BOX")]),
    # ResNeXt grouping and 6 anchors per location (3 aspect ratios x 2 scales per octave)
    "x50_multianchor": ("configs/atss/atss_X_101_32x8d_FPN_2x.yaml", [
        "MODEL.BACKBONE.CONV_BODY", "R-50-FPN-RETINANET", "MODEL.RESNETS.NUM_GROUPS", 4,
        "MODEL.RESNETS.WIDTH_PER_GROUP", 2, "MODEL.RESNETS.STEM_OUT_CHANNELS", 8,
        "MODEL.RESNETS.RES2_OUT_CHANNELS", 16, "MODEL.RESNETS.BACKBONE_OUT_CHANNELS", 32,
        "MODEL.ATSS.ASPECT_RATIOS", (0.5, 1.0, 2.0), "MODEL.ATSS.SCALES_PER_OCTAVE", 2],
                        [(p, "BOX") for p in ("ATSS", "SSC", "IoU", "TOPK")]),
}
# the multi-scale test: test size, a flip, two extra scales with their flips and size ranges
TTA_OVERRIDES = ["INPUT.MIN_SIZE_TEST", 128, "INPUT.MAX_SIZE_TEST", 224, "TEST.BBOX_AUG.ENABLED", True,
                 "TEST.BBOX_AUG.H_FLIP", True, "TEST.BBOX_AUG.SCALES", (96, 176), "TEST.BBOX_AUG.MAX_SIZE", 320,
                 "TEST.BBOX_AUG.SCALE_H_FLIP", True, "TEST.BBOX_AUG.SCALE_RANGES", [[0, 80], [24, 10000]],
                 "TEST.DETECTIONS_PER_IMG", 60, "MODEL.ATSS.PRE_NMS_TOP_N", 150,
                 "MODEL.RETINANET.NUM_CLASSES", NUM_CLASSES]
# raccoon photographs shipped in data/raccoon (MIT), shrunk to odd sizes
PHOTOS = (("raccoon-1.jpg", (131, 97)), ("raccoon-105.jpg", (113, 150)), ("raccoon-12.jpg", (120, 88)))


# ---------------------------------------------------------------- stand-ins and shims
def _legacy_iou_matrix(a, b):
    area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
    area_b = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    lt = torch.max(a[:, None, :2], b[None, :, :2])
    rb = torch.min(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt + 1).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


def _greedy_nms(boxes, scores, threshold, labels=None, suppress_equal=True):
    """Indices kept by greedy NMS in descending-score order (the official kernels' rules)."""
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.int64)
    order = scores.sort(descending=True, stable=True)[1]
    iou = _legacy_iou_matrix(boxes[order], boxes[order])
    if labels is not None:
        lab = labels[order]
        iou = torch.where(lab[:, None] == lab[None, :], iou, torch.zeros_like(iou))
    removed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if removed[i]:
            continue
        keep.append(i)
        over = iou[i] >= threshold if suppress_equal else iou[i] > threshold
        removed |= over
    return order[torch.tensor(keep, dtype=torch.int64)]


def _stand_in_ops():
    ops = types.ModuleType("atss_core._C")
    # the CUDA kernels (which ran the official evaluations): suppress when IoU > threshold
    # (among equal labels for ml_nms), kept indices returned in ascending index order
    ops.nms = lambda boxes, scores, thr: _greedy_nms(boxes, scores, thr, suppress_equal=False).sort()[0]
    ops.ml_nms = lambda boxes, scores, labels, thr: _greedy_nms(boxes, scores, thr, labels,
                                                                suppress_equal=False).sort()[0]

    def missing(*_args, **_kwargs):
        raise NotImplementedError("this op has no stand-in in the recorder")
    for name in ("roi_align_forward", "roi_align_backward", "roi_pool_forward", "roi_pool_backward",
                 "sigmoid_focalloss_forward", "sigmoid_focalloss_backward", "deform_psroi_pooling_forward",
                 "deform_psroi_pooling_backward"):
        setattr(ops, name, missing)
    return ops


def import_official(repo):
    """Import the official package from ``repo`` with the stand-ins; returns its module."""
    for name, builtin in (("float", float), ("int", int), ("bool", bool)):
        if not hasattr(np, name):  # aliases numpy 1.24 removed
            setattr(np, name, builtin)
    six = types.ModuleType("torch._six")
    six.PY3, six.PY37 = True, True
    six.string_classes, six.int_classes = (str, bytes), int
    sys.modules["torch._six"] = six
    torch._six = six
    sys.path[:] = [repo] + [p for p in sys.path if os.path.abspath(p or ".") != PROJECT]
    for mod in [m for m in sys.modules if m == "atss_core" or m.startswith("atss_core.")]:
        del sys.modules[mod]
    import atss_core
    if os.path.dirname(os.path.dirname(os.path.abspath(atss_core.__file__))) != os.path.abspath(repo):
        raise SystemExit("imported atss_core from {}, not from the official checkout {}".format(
            atss_core.__file__, repo))
    ops = _stand_in_ops()
    sys.modules["atss_core._C"] = ops
    atss_core._C = ops
    # the official CPU focal loss indexes gamma[0] / alpha[0] of what are floats: wrap them
    import atss_core.layers.sigmoid_focal_loss as sfl
    cpu_loss = sfl.sigmoid_focal_loss_cpu
    sfl.sigmoid_focal_loss_cpu = lambda logits, targets, gamma, alpha: cpu_loss(logits, targets, (gamma,), (alpha,))
    # old torch made permuted results contiguous; current torch keeps the strides of a 1x1
    # level, which the official ``.view`` calls then reject
    import atss_core.modeling.rpn.atss.inference as atss_inference
    flatten = atss_inference.permute_and_flatten
    atss_inference.permute_and_flatten = lambda *args: flatten(*args).contiguous()
    # its deformable convolutions refuse CPU tensors: torchvision's deform_conv2d has the same
    # sampling (offsets as (dy, dx) per tap, zero outside (-1, H) x (-1, W), modulated by mask)
    import torchvision
    import atss_core.layers.dcn.deform_conv_module as dcn_module

    def modulated_deform_conv(input, offset, mask, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                              deformable_groups=1):
        return torchvision.ops.deform_conv2d(input, offset, weight, bias, stride=stride, padding=padding,
                                             dilation=dilation, mask=mask)

    def deform_conv(input, offset, weight, stride=1, padding=0, dilation=1, groups=1, deformable_groups=1,
                    im2col_step=64):
        return torchvision.ops.deform_conv2d(input, offset, weight, None, stride=stride, padding=padding,
                                             dilation=dilation)
    dcn_module.modulated_deform_conv = modulated_deform_conv
    dcn_module.deform_conv = deform_conv
    # the official vote functions move their results to the GPU unconditionally
    import atss_core.engine.bbox_aug_vote as vote
    vote.torch = types.SimpleNamespace(**{k: getattr(torch, k) for k in dir(torch) if not k.startswith("__")})
    vote.torch.from_numpy = lambda a: _CpuTensor(torch.from_numpy(a))
    return atss_core


class _CpuTensor:
    """Wraps the vote's numpy->tensor results so that ``.float().cuda()`` stays on the CPU."""

    def __init__(self, tensor):
        self.tensor = tensor

    def float(self):
        return _CpuTensor(self.tensor.float())

    def cuda(self):
        return self.tensor


# ---------------------------------------------------------------- inputs
def photo_file_name(size):
    return "photo_{}x{}.png".format(*size)


def load_photos(out_dir):
    """The PIL images of the cases (written to ``out_dir`` as PNG the first time)."""
    from PIL import Image
    images = []
    for name, size in PHOTOS:
        png = os.path.join(out_dir, photo_file_name(size))
        if not os.path.exists(png):
            Image.open(os.path.join(PROJECT, "data", "raccoon", "JPEGImages", name)).convert("RGB").resize(
                size, Image.BILINEAR).save(png)
        images.append(Image.open(png).convert("RGB"))
    return images


def make_targets(BoxList, sizes, generator):
    """Ground truth of the training batch: a few boxes on the first image, a crowd on the second."""
    targets = []
    for i, (w, h) in enumerate(sizes):
        n = 3 if i == 0 else 24
        cx = torch.rand(n, generator=generator) * w
        cy = torch.rand(n, generator=generator) * h
        bw = 4 + torch.rand(n, generator=generator) * w * (0.9 if i == 0 else 0.5)
        bh = 4 + torch.rand(n, generator=generator) * h * (0.9 if i == 0 else 0.5)
        boxes = torch.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], dim=1)
        boxes[:, 0::2] = boxes[:, 0::2].clamp(0, w - 1)
        boxes[:, 1::2] = boxes[:, 1::2].clamp(0, h - 1)
        if i == 1:  # two identical boxes and a box covering the image
            boxes[5] = boxes[4]
            boxes[6] = torch.tensor([0.0, 0.0, w - 1.0, h - 1.0])
        boxes = boxes.round()
        target = BoxList(boxes, (w, h), mode="xyxy")
        target.add_field("labels", torch.randint(1, NUM_CLASSES, (n,), generator=generator))
        targets.append(target)
    return targets


def randomize_weights(model, generator):
    """Move every parameter and buffer off its initial value (so each one matters), keeping
    activations finite: normalisation layers near identity, head outputs in a useful range."""
    with torch.no_grad():
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if "anchor_generator" in name:
                continue
            if tensor.dim() == 4:  # conv: He-style normal
                fan_in = tensor.shape[1] * tensor.shape[2] * tensor.shape[3]
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * (1.0 / fan_in) ** 0.5)
            elif name.endswith("running_var") or (name.endswith("weight") and tensor.dim() == 1):
                tensor.copy_(0.6 + 0.8 * torch.rand(tensor.shape, generator=generator))
            elif name.endswith("scale"):
                tensor.copy_(0.8 + 0.4 * torch.rand(tensor.shape, generator=generator))
            else:  # biases, running means
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
        head = model.rpn.head
        head.cls_logits.bias.add_(-1.5)
        head.bbox_pred.weight.mul_(0.3)
        # values exactly representable in float16, so the file stores them at half the size
        for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
            if tensor.is_floating_point() and "anchor_generator" not in name:
                tensor.copy_(tensor.half().float())


# ---------------------------------------------------------------- recording
_PRISTINE = []


def configure(official, config_file, overrides):
    """The official global cfg, reset to its defaults, then the file and the overrides."""
    cfg = official.config.cfg  # the official TTA code reads this global
    if not _PRISTINE:
        _PRISTINE.append(cfg.clone())
    cfg.defrost()
    cfg.merge_from_other_cfg(_PRISTINE[0])
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(["MODEL.ATSS.NUM_CLASSES", NUM_CLASSES, "MODEL.WEIGHT", "", "MODEL.DEVICE", "cpu"]
                        + list(overrides))
    cfg.freeze()
    return cfg


def boxlist_record(boxlist):
    return {"bbox": boxlist.bbox.detach().clone(), "scores": boxlist.get_field("scores").detach().clone(),
            "labels": boxlist.get_field("labels").clone(), "size": boxlist.size}


def record_case(official, repo, name, out_dir, photos):
    from atss_core.modeling.detector import build_detection_model
    from atss_core.structures.bounding_box import BoxList
    from atss_core.structures.image_list import to_image_list
    from atss_core.data import transforms as T

    config_file, overrides, pairs = CASES[name]
    generator = torch.Generator().manual_seed(SEED)
    normalize = T.Normalize(mean=[102.9801, 115.9465, 122.7717], std=[1.0, 1.0, 1.0], to_bgr255=True)
    import torchvision.transforms.functional as F
    images = [normalize(F.to_tensor(p)) for p in photos]
    sizes = [(p.width, p.height) for p in photos]
    targets = make_targets(BoxList, sizes[:2], generator)
    record = {"case": name, "config_file": config_file, "overrides": list(overrides), "seed": SEED,
              "num_classes": NUM_CLASSES, "image_files": [photo_file_name(s) for s in sizes],
              "targets": [{"bbox": t.bbox, "labels": t.get_field("labels"), "size": t.size} for t in targets],
              "runs": {}, "eval": {}}
    state = None
    for positive_type, regression_type in pairs:
        cfg = configure(official, os.path.join(repo, config_file), list(overrides) + [
            "MODEL.ATSS.POSITIVE_TYPE", positive_type, "MODEL.ATSS.REGRESSION_TYPE", regression_type])
        torch.manual_seed(SEED)
        model = build_detection_model(cfg)
        if state is None:
            randomize_weights(model, generator)
            state = {k: v.clone() for k, v in model.state_dict().items()}
            # the weights only: the anchors are recorded as the official generator made them,
            # so that ours are compared with them rather than loaded from them
            record["state_dict"] = {k: v.half() if v.is_floating_point() else v for k, v in state.items()
                                    if "anchor_generator" not in k}
        else:
            model.load_state_dict(state)
        run = {}
        batch = to_image_list(images[:2], cfg.DATALOADER.SIZE_DIVISIBILITY)
        model.train()
        features = model.backbone(batch.tensors)
        head_out = model.rpn.head(features)
        anchors = model.rpn.anchor_generator(batch, features)
        if "anchors" not in record:  # the same for every run of a case
            record["anchors"] = [a.bbox.clone() for a in anchors[0]]
        run["visibility"] = [[a.get_field("visibility").clone() for a in per_image] for per_image in anchors]
        labels, reg_targets = model.rpn.loss_evaluator.prepare_targets(targets, anchors)
        run["labels"] = [l.to(torch.int8) for l in labels]
        # regression targets only where they are used: at the positive anchors
        run["reg_targets"] = [r[l > 0].clone() for l, r in zip(labels, reg_targets)]
        losses = model.rpn.loss_evaluator(*head_out, targets, anchors)
        run["losses"] = {k: v.item() for k, v in zip(("loss_cls", "loss_reg", "loss_centerness"), losses)}
        model.zero_grad()
        sum(losses).backward()
        run["grads"] = {k: p.grad.clone() for k, p in model.named_parameters()
                        if p.grad is not None and k in GRAD_PARAMS}
        if regression_type not in record["eval"]:  # eval does not depend on the assignment
            record["eval"][regression_type] = record_eval(official, repo, config_file, list(overrides) + [
                "MODEL.ATSS.REGRESSION_TYPE", regression_type], state, images)
        record["runs"][(positive_type, regression_type)] = run
        print("  {} {}/{}: losses {}".format(name, positive_type, regression_type,
                                            {k: round(v, 5) for k, v in run["losses"].items()}))
    if name == "r50_frozenbn":
        record["tta"] = record_tta(official, repo, config_file, overrides, state, photos)
    torch.save(record, os.path.join(out_dir, name + ".pt"))


# eval variants: the default cap; no cap (so the count measures NMS); a high threshold (few
# detections); a threshold nothing passes (the empty path)
EVAL_VARIANTS = (("default", []), ("uncapped", ["TEST.DETECTIONS_PER_IMG", 100000]),
                 ("sparse", ["MODEL.ATSS.INFERENCE_TH", 0.5]), ("none", ["MODEL.ATSS.INFERENCE_TH", 0.999]))


def record_eval(official, repo, config_file, overrides, state, images):
    """{variant: {"extra": overrides, "results": per-image detections}} of the padded batch of all images."""
    from atss_core.modeling.detector import build_detection_model
    from atss_core.structures.image_list import to_image_list
    found = {}
    for variant, extra in EVAL_VARIANTS:
        cfg = configure(official, os.path.join(repo, config_file), overrides + extra)
        model = build_detection_model(cfg)
        model.load_state_dict(state)
        model.eval()
        with torch.no_grad():
            results = model(to_image_list(images, cfg.DATALOADER.SIZE_DIVISIBILITY))
        found[variant] = {"extra": extra, "results": [boxlist_record(r) for r in results]}
    print("  eval {}: {}".format(overrides[-1], {v: [len(r["scores"]) for r in f["results"]] for v, f in found.items()}))
    return found


# small parameters at the head's output, inside it, in the FPN and deep in the body (and the
# deformable offsets where there are some)
GRAD_PARAMS = ("rpn.head.cls_tower.9.offset.bias", "backbone.body.layer3.0.conv2.offset.bias",
               "rpn.head.cls_logits.weight", "rpn.head.bbox_pred.weight", "rpn.head.centerness.weight",
               "rpn.head.centerness.bias", "rpn.head.scales.0.scale", "rpn.head.scales.4.scale",
               "rpn.head.cls_tower.1.weight", "rpn.head.bbox_tower.10.weight", "backbone.fpn.fpn_inner2.bias",
               "backbone.body.layer2.0.conv1.weight")




def record_tta(official, repo, config_file, overrides, state, photos):
    """Merged multi-scale + flip detections: NMS of the raw boxes (VOTE False); box voting with its
    cap binding; box voting, soft voting and per-class NMS uncapped."""
    from atss_core.modeling.detector import build_detection_model
    from atss_core.engine.bbox_aug import im_detect_bbox_aug
    from atss_core.engine.bbox_aug_vote import im_detect_bbox_aug_vote
    tta = {"overrides": list(TTA_OVERRIDES), "runs": {}}
    uncapped = ["MODEL.ATSS.PRE_NMS_TOP_N", 100000]
    for label, extra in (("nms", ["TEST.BBOX_AUG.VOTE", False]),
                         ("vote", ["TEST.BBOX_AUG.VOTE", True, "TEST.BBOX_AUG.MERGE_TYPE", "vote"]),
                         ("vote-uncapped", ["TEST.BBOX_AUG.VOTE", True, "TEST.BBOX_AUG.MERGE_TYPE", "vote"] + uncapped),
                         ("soft-vote", ["TEST.BBOX_AUG.VOTE", True, "TEST.BBOX_AUG.MERGE_TYPE", "soft-vote"] + uncapped),
                         ("nms-merge", ["TEST.BBOX_AUG.VOTE", True, "TEST.BBOX_AUG.MERGE_TYPE", "nms"] + uncapped)):
        cfg = configure(official, os.path.join(repo, config_file), list(overrides) + TTA_OVERRIDES + extra)
        model = build_detection_model(cfg)
        model.load_state_dict(state)
        model.eval()
        detect = im_detect_bbox_aug_vote if cfg.TEST.BBOX_AUG.VOTE else im_detect_bbox_aug
        with torch.no_grad():
            results = detect(model, photos, torch.device("cpu"))
        # the official evaluation maps the merged boxes to the original image size
        results = [r.resize((p.width, p.height)) for r, p in zip(results, photos)]
        tta["runs"][label] = {"extra": extra, "results": [boxlist_record(r) for r in results]}
        print("  multi-scale test, {}: {} detections".format(label, [len(r) for r in results]))
    return tta


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official-repo", required=True, help="a checkout of github.com/sfzhang15/ATSS")
    parser.add_argument("--out", default=os.path.join(PROJECT, "tests", "data", "official"))
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    args = parser.parse_args(argv)
    repo = os.path.abspath(args.official_repo)
    if not os.path.isfile(os.path.join(repo, "atss_core", "modeling", "rpn", "atss", "atss.py")):
        raise SystemExit("--official-repo {}: not a checkout of the official ATSS code".format(repo))
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    photos = load_photos(args.out)
    official = import_official(repo)
    import atss_core.config  # noqa: F401  (official)
    import atss_core.config.defaults  # noqa: F401
    for name in args.cases:
        print("recording", name)
        record_case(official, repo, name, args.out, photos)


if __name__ == "__main__":
    main()
