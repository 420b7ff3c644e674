"""Records mmdetection 3.3.0's ATSS outputs as golden data for tests/golden/test_mmdet_outputs.py.

Not part of the package and not run by the tests: it needs mmdetection, which the project does
not depend on. In a throw-away virtual environment outside the repository (about 2 minutes):

    python3 -m venv /tmp/mmdet_venv
    /tmp/mmdet_venv/bin/pip install --no-deps mmdet==3.3.0 mmengine==0.10.7 mmcv-lite==2.1.0
    /tmp/mmdet_venv/bin/pip install addict rich termcolor yapf scipy shapely six terminaltables \\
        torch torchvision opencv-python-headless pycocotools
    /tmp/mmdet_venv/bin/python tools/dev/record_mmdet_outputs.py --output tests/data/mmdet

mmcv-lite has no compiled ops; ATSS inference needs only ``nms``, which a stand-in module
(``mmcv._ext``) provides on torchvision. The model is mmdetection's atss_r50_fpn_1x_coco
narrowed to 8 base channels (a 1.6 MB checkpoint that exercises every layer type of the real
ones) with seeded random weights, batch-norm statistics and FPN/head scales, and the class
biases raised so that detections pass the score threshold. Written to OUTPUT:

- ``atss_r50_narrow_mmdet.pth``: the checkpoint, in mmdetection's format ({"meta", "state_dict"});
- ``outputs.pth``: per image its file name, original and resized shape, scale factors, every
  8th pixel and the per-channel sums of the resized uint8 image (before normalisation), the
  network input's per-channel sums, the head
  outputs at every level (max class logit, its class, box deltas, centerness logits, for the
  first image) and the final detections in mmdetection's order (boxes in original pixels,
  scores, labels 0..79).
"""
import argparse
import importlib.machinery
import os
import sys
import types

import torch

IMAGES = ("raccoon-106.jpg", "raccoon-156.jpg", "raccoon-134.jpg")  # 269x187, 201x251, 225x225
TEST_SCALE = (1333, 800)
SEED = 0


def install_nms_stand_in():
    """A fake ``mmcv._ext`` whose ``nms`` is torchvision's (mmcv's offset=0 kernel: no +1);
    every other op raises if called."""
    import torchvision

    def nms(boxes, scores, iou_threshold, offset):
        if offset != 0:
            raise NotImplementedError("the stand-in nms supports offset=0 only")
        return torchvision.ops.nms(boxes, scores, iou_threshold)

    def missing(name):
        def op(*args, **kwargs):
            raise NotImplementedError("mmcv op {} is not available in this recorder".format(name))
        return op

    class StandIn(types.ModuleType):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return missing(name)

    module = StandIn("mmcv._ext")
    module.nms = nms
    module.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", None)
    sys.modules["mmcv._ext"] = module


def model_config():
    return dict(
        type="ATSS",
        data_preprocessor=dict(type="DetDataPreprocessor", mean=[123.675, 116.28, 103.53],
                               std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32),
        backbone=dict(type="ResNet", depth=50, base_channels=8, num_stages=4, out_indices=(0, 1, 2, 3),
                      frozen_stages=1, norm_cfg=dict(type="BN", requires_grad=True), norm_eval=True,
                      style="pytorch", init_cfg=None),
        neck=dict(type="FPN", in_channels=[32, 64, 128, 256], out_channels=32, start_level=1,
                  add_extra_convs="on_output", num_outs=5),
        bbox_head=dict(type="ATSSHead", num_classes=80, in_channels=32, stacked_convs=4, feat_channels=32,
                       anchor_generator=dict(type="AnchorGenerator", ratios=[1.0], octave_base_scale=8,
                                             scales_per_octave=1, strides=[8, 16, 32, 64, 128]),
                       bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0, 0.0, 0.0, 0.0],
                                       target_stds=[0.1, 0.1, 0.2, 0.2]),
                       loss_cls=dict(type="FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
                       loss_bbox=dict(type="GIoULoss", loss_weight=2.0),
                       loss_centerness=dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0)),
        train_cfg=dict(assigner=dict(type="ATSSAssigner", topk=9), allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(type="nms", iou_threshold=0.6),
                      max_per_img=100))


def randomise(model, generator):
    """Weights that make a non-trivial detector: every conv and norm random, BN statistics
    random, the FPN-level scales away from 1, class biases raised to about 8% probability."""
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (1.5 / fan_in) ** 0.5)
                if module.bias is not None:
                    module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
            elif isinstance(module, (torch.nn.BatchNorm2d, torch.nn.GroupNorm)):
                module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=generator))
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
                if isinstance(module, torch.nn.BatchNorm2d):
                    module.running_mean.copy_(torch.randn(module.running_mean.shape, generator=generator) * 0.1)
                    module.running_var.copy_(0.5 + torch.rand(module.running_var.shape, generator=generator))
        head = model.bbox_head
        head.atss_cls.bias.copy_(-2.5 + torch.randn(head.atss_cls.bias.shape, generator=generator) * 0.3)
        head.atss_reg.weight.mul_(0.3)
        for scale in head.scales:
            scale.scale.copy_(0.8 + 0.4 * torch.rand((), generator=generator))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", default="tests/data/mmdet")
    parser.add_argument("--images", default="data/raccoon/JPEGImages")
    args = parser.parse_args()

    install_nms_stand_in()
    import mmdet
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import ConfigDict
    from mmengine.dataset import Compose

    register_all_modules()
    torch.manual_seed(SEED)
    model = MODELS.build(ConfigDict(model_config()))  # the heads read test_cfg by attribute
    randomise(model, torch.Generator().manual_seed(SEED))
    model.eval()

    os.makedirs(args.output, exist_ok=True)
    checkpoint = {"meta": {"mmdet_version": mmdet.__version__, "note": "random weights, atss_core golden test"},
                  "state_dict": model.state_dict()}
    torch.save(checkpoint, os.path.join(args.output, "atss_r50_narrow_mmdet.pth"))

    pipeline = Compose([dict(type="LoadImageFromFile"), dict(type="Resize", scale=TEST_SCALE, keep_ratio=True),
                        dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape",
                                                              "scale_factor"))])
    captured = {}
    model.data_preprocessor.register_forward_hook(lambda m, i, out: captured.__setitem__("inputs", out["inputs"]))
    model.bbox_head.register_forward_hook(lambda m, i, out: captured.__setitem__("head", out))

    records = []
    for index, name in enumerate(IMAGES):
        data = pipeline(dict(img_path=os.path.join(args.images, name), img_id=index))
        resized = data["inputs"].permute(1, 2, 0).contiguous()  # HxWx3 uint8 BGR, as resized
        with torch.no_grad():
            result = model.test_step(dict(inputs=[data["inputs"]], data_samples=[data["data_samples"]]))[0]
        meta = result.metainfo
        cls_scores, bbox_preds, centernesses = captured["head"]
        record = {
            "file_name": name,
            "ori_shape": tuple(meta["ori_shape"]),
            "img_shape": tuple(meta["img_shape"]),
            "scale_factor": tuple(float(s) for s in meta["scale_factor"]),
            "resized_bgr_sample": resized[::8, ::8].clone(),  # every 8th pixel: small, and locates a mismatch
            "resized_bgr_sums": resized.double().sum(dim=(0, 1)),
            "input_channel_sums": captured["inputs"][0].double().sum(dim=(1, 2)),
            "input_shape": tuple(captured["inputs"].shape),
            "boxes": result.pred_instances.bboxes.clone(),
            "scores": result.pred_instances.scores.clone(),
            "labels": result.pred_instances.labels.clone(),
        }
        if index == 0:
            record["head"] = [{"max_logit": c[0].max(dim=0).values, "argmax": c[0].argmax(dim=0),
                               "deltas": b[0].clone(), "centerness": n[0, 0].clone()}
                              for c, b, n in zip(cls_scores, bbox_preds, centernesses)]
        records.append(record)
        print("{}: {} -> {}, {} detections, top score {:.4f}".format(
            name, record["ori_shape"], record["img_shape"], len(record["scores"]),
            float(record["scores"].max()) if len(record["scores"]) else 0.0))
    torch.save({"mmdet_version": mmdet.__version__, "test_scale": TEST_SCALE, "images": records},
               os.path.join(args.output, "outputs.pth"))


if __name__ == "__main__":
    main()
