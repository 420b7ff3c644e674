"""End-to-end losses of the detector on a tiny synthetic set (CPU)."""
import math

import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.modeling.detector import build_detection_model
from atss_core.structures import BoxList, to_image_list


def tiny_cfg():
    cfg = default_cfg.clone()
    cfg.merge_from_list([
        "MODEL.DEVICE", "cpu", "MODEL.ATSS_ON", True, "MODEL.RPN_ONLY", True,
        "MODEL.BACKBONE.CONV_BODY", "R-50-FPN-RETINANET", "MODEL.BACKBONE.FREEZE_CONV_BODY_AT", 0,
        "MODEL.RESNETS.STEM_FUNC", "StemWithGN", "MODEL.RESNETS.TRANS_FUNC", "BottleneckWithGN",
        "MODEL.RESNETS.STEM_OUT_CHANNELS", 32, "MODEL.RESNETS.RES2_OUT_CHANNELS", 32,
        "MODEL.RESNETS.WIDTH_PER_GROUP", 32, "MODEL.RESNETS.BACKBONE_OUT_CHANNELS", 32,
        "MODEL.GROUP_NORM.NUM_GROUPS", 8, "MODEL.RETINANET.USE_C5", False,
        "MODEL.ATSS.NUM_CLASSES", 3, "MODEL.ATSS.NUM_CONVS", 1,
        "MODEL.ATSS.ANCHOR_SIZES", "(16, 32, 64, 128, 256)",
    ])
    return cfg


def synthetic_batch(seed=0, n=4, size=64):
    g = torch.Generator().manual_seed(seed)
    images, targets = [], []
    for _ in range(n):
        image = torch.rand(3, size, size, generator=g) * 40
        boxes, labels = [], []
        for _ in range(2):
            label = int(torch.randint(1, 3, (1,), generator=g))
            w, h = [int(v) for v in torch.randint(12, 30, (2,), generator=g)]
            x, y = [int(v) for v in torch.randint(0, size - 30, (2,), generator=g)]
            image[label - 1, y:y + h, x:x + w] = 250.0  # class 1 red-ish, class 2 green-ish
            boxes.append([x, y, x + w - 1, y + h - 1])
            labels.append(label)
        target = BoxList(torch.tensor(boxes, dtype=torch.float32), (size, size))
        target.add_field("labels", torch.tensor(labels))
        images.append(image - 120.0)
        targets.append(target)
    return to_image_list(images, size_divisible=32), targets


def test_losses_are_finite_and_include_an_image_without_objects():
    torch.manual_seed(0)
    model = build_detection_model(tiny_cfg())
    model.train()
    images, targets = synthetic_batch(n=2)
    empty = BoxList(torch.zeros(0, 4), targets[1].size)
    empty.add_field("labels", torch.zeros(0, dtype=torch.int64))
    # every logit at the prior: p = 0.01 everywhere, so the focal loss has a closed form
    torch.nn.init.zeros_(model.rpn.head.cls_logits.weight)
    losses = model(images, [targets[0], empty])
    assert set(losses) == {"loss_cls", "loss_reg", "loss_centerness"}
    assert all(torch.isfinite(v) for v in losses.values())
    positive_term = 0.25 * 0.99 ** 2 * -math.log(0.01)  # alpha (1 - p)^gamma (-log p)
    negative_term = 0.75 * 0.01 ** 2 * -math.log(0.99)  # (1 - alpha) p^gamma (-log(1 - p))
    anchors = 2 * (8 * 8 + 4 * 4 + 2 * 2 + 1 + 1)  # two 64x64 images, P3-P7, one anchor per place
    features = model.backbone(images.tensors)
    labels, _ = model.rpn.loss_evaluator.prepare_targets(
        [targets[0], empty], model.rpn.anchor_generator(images, features))
    positives = int(sum((l > 0).sum() for l in labels))
    assert positives > 0
    expected = (positives * positive_term + (anchors * 2 - positives) * negative_term) / positives
    assert losses["loss_cls"].item() == pytest.approx(expected, rel=1e-4)
    sum(losses.values()).backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_all_background_batch_trains_without_nan():
    model = build_detection_model(tiny_cfg())
    model.train()
    images, targets = synthetic_batch(n=2)
    empty = BoxList(torch.zeros(0, 4), targets[0].size)
    empty.add_field("labels", torch.zeros(0, dtype=torch.int64))
    torch.nn.init.zeros_(model.rpn.head.cls_logits.weight)  # every logit at the prior 0.01
    losses = model(images, [empty, empty])
    assert losses["loss_reg"].item() == 0 and losses["loss_centerness"].item() == 0
    # no positives: the sum over 2 images x 86 anchors x 2 classes of (1 - alpha) p^2 (-log(1 - p)), / 1
    assert losses["loss_cls"].item() == pytest.approx(2 * 86 * 2 * 0.75 * 1e-4 * -math.log(0.99), rel=1e-4)
    sum(losses.values()).backward()


def test_tiny_overfit_drives_the_loss_down():
    torch.manual_seed(0)
    model = build_detection_model(tiny_cfg())
    model.train()
    images, targets = synthetic_batch()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9,
                                weight_decay=1e-4)
    history = []
    for _ in range(40):
        losses = model(images, targets)
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        history.append(total.item())
    first, last = sum(history[:3]) / 3, sum(history[-3:]) / 3
    assert last < 0.6 * first, "loss went from {:.3f} to {:.3f}".format(first, last)
