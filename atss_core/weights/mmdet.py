"""mmdetection's ATSS checkpoints (``mmdet://NAME`` or a local file) -> our state-dict names,
and the conventions those weights were trained with (configs/mmdet/).

mmdetection's state dict: ``backbone.*`` (a torchvision-layout ResNet), ``neck.lateral_convs``
and ``neck.fpn_convs`` (FPN, with P6 and P7 as fpn_convs 3 and 4), ``bbox_head.{cls,reg}_convs``
(conv without bias + GroupNorm), ``bbox_head.atss_{cls,reg,centerness}`` and
``bbox_head.scales.i.scale`` (0-d)."""
import re
from collections import OrderedDict, namedtuple

import torch

from .torchvision import convert_torchvision_resnet, values_close

MMDetModel = namedtuple("MMDetModel", ["url", "config", "box_ap"])

_ZOO = "https://download.openmmlab.com/mmdetection/v2.0/atss/"
# mmdetection's configs/atss/metafile.yml (v3.3.0): the 1x COCO models, their box AP on val2017
MMDET_MODELS = OrderedDict([
    ("atss_r50_fpn_1x_coco", MMDetModel(_ZOO + "atss_r50_fpn_1x_coco/atss_r50_fpn_1x_coco_20200209-985f7bd0.pth",
                                        "configs/mmdet/atss_r50_fpn_1x_coco.yaml", 39.4)),
    ("atss_r101_fpn_1x_coco", MMDetModel(_ZOO + "atss_r101_fpn_1x_coco/atss_r101_fpn_1x_20200825-dfcadd6f.pth",
                                         "configs/mmdet/atss_r101_fpn_1x_coco.yaml", 41.5)),
])

MMDET_BN_EPS = 1e-5  # mmdetection's ResNets: nn.BatchNorm2d's default eps, in eval mode (norm_eval)
MMDET_PIXEL_MEAN = (123.675, 116.28, 103.53)  # RGB, 0..255
MMDET_PIXEL_STD = (58.395, 57.12, 57.375)

_MARKER = "bbox_head.atss_cls.weight"
_HEAD = {"atss_cls": "cls_logits", "atss_reg": "bbox_pred", "atss_centerness": "centerness"}
_TOWER = {"cls_convs": "cls_tower", "reg_convs": "bbox_tower"}


def mmdet_url(name):
    if name not in MMDET_MODELS:
        raise ValueError("unknown mmdetection model {!r} (mmdet://NAME); known: {}".format(
            name, ", ".join(MMDET_MODELS)))
    return MMDET_MODELS[name].url


def mmdet_state_dict(checkpoint):
    """The state dict of an mmdetection checkpoint ({"meta", "state_dict", ...}), or None when
    ``checkpoint`` is not one."""
    if not isinstance(checkpoint, dict):
        return None
    state_dict = checkpoint.get("state_dict", checkpoint)
    if isinstance(state_dict, dict) and _MARKER in state_dict:
        return state_dict
    return None


def convert_mmdet_atss(state_dict, stage_with_dcn=(False, False, False, False)):
    """mmdetection ATSS state dict -> ours (see the module docstring for the layout): the
    backbone through the torchvision converter (BatchNorm eps folded), FPN and head renamed,
    zero biases for the tower convs (mmdetection's have none: GroupNorm follows), the 0-d
    scales as shape (1,)."""
    backbone = OrderedDict((k[len("backbone."):], v) for k, v in state_dict.items() if k.startswith("backbone."))
    converted = convert_torchvision_resnet(backbone, stage_with_dcn=stage_with_dcn, eps=MMDET_BN_EPS)
    for name, value in state_dict.items():
        if name.startswith("backbone.") or name.endswith("num_batches_tracked"):
            continue
        match = re.match(r"^neck\.(lateral|fpn)_convs\.(\d)\.conv\.(weight|bias)$", name)
        if match:
            kind, index, leaf = match.group(1), int(match.group(2)), match.group(3)
            if kind == "lateral":
                converted["backbone.fpn.fpn_inner{}.{}".format(index + 2, leaf)] = value
            elif index < 3:
                converted["backbone.fpn.fpn_layer{}.{}".format(index + 2, leaf)] = value
            else:
                converted["backbone.fpn.top_blocks.p{}.{}".format(index + 3, leaf)] = value
            continue
        match = re.match(r"^bbox_head\.(cls_convs|reg_convs)\.(\d+)\.(conv|gn)\.(weight|bias)$", name)
        if match:
            tower, index, layer, leaf = _TOWER[match.group(1)], int(match.group(2)), match.group(3), match.group(4)
            position = 3 * index + (0 if layer == "conv" else 1)
            converted["rpn.head.{}.{}.{}".format(tower, position, leaf)] = value
            if layer == "conv":
                bias = "rpn.head.{}.{}.bias".format(tower, position)
                converted.setdefault(bias, torch.zeros(value.shape[0], dtype=value.dtype))
            continue
        match = re.match(r"^bbox_head\.(atss_cls|atss_reg|atss_centerness)\.(weight|bias)$", name)
        if match:
            converted["rpn.head.{}.{}".format(_HEAD[match.group(1)], match.group(2))] = value
            continue
        match = re.match(r"^bbox_head\.scales\.(\d)\.scale$", name)
        if match:
            converted["rpn.head.scales.{}.scale".format(match.group(1))] = value.reshape(1)
            continue
        raise ValueError("unexpected entry {} in the mmdetection ATSS checkpoint".format(name))
    return converted


def mmdet_convention_mismatches(cfg):
    """The config keys (as "KEY VALUE") that differ from what mmdetection's ATSS models need."""
    wanted = [
        ("MODEL.LEGACY_PLUS_ONE", cfg.MODEL.LEGACY_PLUS_ONE, False),
        ("MODEL.RESNETS.STRIDE_IN_1X1", cfg.MODEL.RESNETS.STRIDE_IN_1X1, False),
        ("MODEL.FPN.RELU_BEFORE_P7", cfg.MODEL.FPN.RELU_BEFORE_P7, False),
        ("MODEL.ATSS.POSTPROCESS", cfg.MODEL.ATSS.POSTPROCESS, "mmdet"),
        ("INPUT.TO_BGR255", cfg.INPUT.TO_BGR255, False),
        ("INPUT.TO_RGB255", cfg.INPUT.TO_RGB255, True),
        ("INPUT.RESIZE_STYLE", cfg.INPUT.RESIZE_STYLE, "mmdet"),
    ]
    wrong = ["{} {}".format(key, expected) for key, value, expected in wanted if value != expected]
    if not values_close(cfg.INPUT.PIXEL_MEAN, MMDET_PIXEL_MEAN):
        wrong.append("INPUT.PIXEL_MEAN {}".format(list(MMDET_PIXEL_MEAN)))
    if not values_close(cfg.INPUT.PIXEL_STD, MMDET_PIXEL_STD):
        wrong.append("INPUT.PIXEL_STD {}".format(list(MMDET_PIXEL_STD)))
    return wrong


# the keys whose values a detector's weights are tied to (a checkpoint we save with any of
# mmdetection's conventions records them; loading it needs the same values)
CONVENTION_KEYS = ("MODEL.LEGACY_PLUS_ONE", "MODEL.RESNETS.STRIDE_IN_1X1", "MODEL.FPN.RELU_BEFORE_P7",
                   "MODEL.ATSS.POSTPROCESS", "INPUT.TO_BGR255", "INPUT.TO_RGB255", "INPUT.RESIZE_STYLE")


def convention_settings(cfg):
    """{key: value} of ``cfg`` for CONVENTION_KEYS."""
    settings = {}
    for key in CONVENTION_KEYS:
        value = cfg
        for part in key.split("."):
            value = getattr(value, part)
        settings[key] = value
    return settings


def check_saved_conventions(cfg, saved, source):
    """Refuses a whole detector of ours whose recorded conventions (``saved``: the
    checkpoint's "conventions" entry, None when it has none) differ from the config's. A
    checkpoint without the entry was trained with the official conventions; "mmdet" is how
    the first version recorded the whole configs/mmdet/ set."""
    if not isinstance(saved, dict):
        check_mmdet_pairing(cfg, saved == "mmdet", source)
        return
    ours = convention_settings(cfg)
    differing = [key for key in CONVENTION_KEYS if key in saved and saved[key] != ours[key]]
    if differing:
        raise ValueError("{} was trained with {}, but the config sets {}: its boxes would be shifted without any "
                         "error; set the checkpoint's values or use the config it was trained with".format(
                             source, ", ".join("{} {}".format(key, saved[key]) for key in differing),
                             ", ".join("{} {}".format(key, ours[key]) for key in differing)))


def uses_mmdet_conventions(cfg):
    """True when ``cfg`` sets mmdetection's box convention or post-processing (configs/mmdet/)."""
    return not cfg.MODEL.LEGACY_PLUS_ONE or cfg.MODEL.ATSS.POSTPROCESS == "mmdet"


def check_mmdet_pairing(cfg, is_mmdet_checkpoint, source):
    """Refuses a checkpoint whose conventions differ from the config's: mmdetection weights
    with an official-convention config (or one that mixes conventions), or official ATSS
    weights with an mmdetection-convention config. Either would give shifted boxes without any
    error. ``is_mmdet_checkpoint``: the file is an mmdetection checkpoint (by its keys) or one
    of ours saved with mmdetection's conventions."""
    if is_mmdet_checkpoint:
        wrong = mmdet_convention_mismatches(cfg)
        if wrong:
            configs = " or ".join(model.config for model in MMDET_MODELS.values())
            raise ValueError("{} holds mmdetection weights, which need mmdetection's conventions: set {}; or use "
                             "{}".format(source, ", ".join(wrong), configs))
    elif uses_mmdet_conventions(cfg):
        raise ValueError("{} holds official-convention ATSS weights, but the config sets mmdetection's conventions "
                         "(MODEL.LEGACY_PLUS_ONE False / MODEL.ATSS.POSTPROCESS mmdet): use a config of configs/atss/ "
                         "for it".format(source))
