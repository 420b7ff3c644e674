"""torchvision's ImageNet ResNets / ResNeXts (``torchvision://ARCH`` or a local state-dict
file) -> our ResNet body names (``backbone.body.*``), with torchvision's BatchNorm eps folded
into our frozen norm, and the input/stride conventions those weights were trained with."""
import os
import re
import urllib.parse
from collections import OrderedDict, namedtuple

# the weights enum of torchvision.models, the member to use (IMAGENET1K_V1: the weights
# detectron2 and mmdetection train from) and our config for that backbone
TorchvisionArch = namedtuple("TorchvisionArch", ["weights_enum", "weights_member", "config"])

_CONFIG_DIR = "configs/atss/torchvision"
TORCHVISION_ARCHS = OrderedDict([
    ("resnet50", TorchvisionArch("ResNet50_Weights", "IMAGENET1K_V1", _CONFIG_DIR + "/atss_R_50_FPN_1x.yaml")),
    ("resnet101", TorchvisionArch("ResNet101_Weights", "IMAGENET1K_V1", _CONFIG_DIR + "/atss_R_101_FPN_2x.yaml")),
    ("resnext101_32x8d", TorchvisionArch("ResNeXt101_32X8D_Weights", "IMAGENET1K_V1",
                                         _CONFIG_DIR + "/atss_X_101_32x8d_FPN_2x.yaml")),
    ("resnext101_64x4d", TorchvisionArch("ResNeXt101_64X4D_Weights", "IMAGENET1K_V1",
                                         _CONFIG_DIR + "/atss_X_101_64x4d_FPN_2x.yaml")),
])

TORCHVISION_BN_EPS = 1e-5  # torchvision's ResNets use nn.BatchNorm2d's default eps
# the input torchvision's ImageNet models were trained on: RGB in 0..1 (INPUT.TO_BGR255 False,
# see data/transforms Normalize), normalised by these per-channel RGB statistics
TORCHVISION_PIXEL_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_PIXEL_STD = (0.229, 0.224, 0.225)

_BODY_PREFIX = "backbone.body."
# keys every torchvision ResNet state dict has (fc.weight may be absent from a headless export)
_TORCHVISION_KEYS = ("conv1.weight", "bn1.running_var", "layer1.0.conv1.weight")
_BN_BUFFERS = ("weight", "bias", "running_mean", "running_var")


def _arch(arch):
    if arch not in TORCHVISION_ARCHS:
        raise ValueError("unknown torchvision backbone {!r} (torchvision://ARCH); known: {}".format(
            arch, ", ".join(TORCHVISION_ARCHS)))
    return TORCHVISION_ARCHS[arch]


def torchvision_weights(arch):
    """The torchvision ``WeightsEnum`` member of ``arch`` (read from the installed torchvision)."""
    entry = _arch(arch)
    import torchvision.models

    enum = getattr(torchvision.models, entry.weights_enum, None)
    member = getattr(enum, entry.weights_member, None) if enum is not None else None
    if member is None:
        import torchvision

        raise ValueError("torchvision {} has no torchvision.models.{}.{} (the weights of torchvision://{})".format(
            torchvision.__version__, entry.weights_enum, entry.weights_member, arch))
    return member


def torchvision_weight_url(arch):
    """The download URL of torchvision's ImageNet weights for ``arch`` (e.g. "resnet50")."""
    return torchvision_weights(arch).url


def torchvision_weight_file_name(arch):
    """The file name of that URL (torchvision's names end in a SHA-256 prefix, -0676ba61.pth)."""
    return os.path.basename(urllib.parse.urlparse(torchvision_weight_url(arch)).path)


def _strip_module(state_dict):
    # a state dict saved from (Distributed)DataParallel has every key under "module."
    keys = list(state_dict.keys())
    if keys and all(k.startswith("module.") for k in keys):
        return OrderedDict((k[len("module."):], v) for k, v in state_dict.items())
    return state_dict


def is_torchvision_resnet(state_dict):
    """True for a torchvision ResNet/ResNeXt state dict (keys conv1.weight, bn1.*, layer1.0.conv1.weight,
    usually fc.*), False for ours (backbone.body.stem.*) or a Caffe2 conversion (stem.*)."""
    if not isinstance(state_dict, dict):
        return False
    keys = set(_strip_module(state_dict).keys())
    return all(k in keys for k in _TORCHVISION_KEYS)


def convert_torchvision_resnet(state_dict, stage_with_dcn=(False, False, False, False), eps=TORCHVISION_BN_EPS):
    """torchvision ResNet state dict -> ours: conv1/bn1 -> backbone.body.stem.conv1/bn1,
    layerN.k.{convX,bnX,downsample.0/1} -> backbone.body.layerN.k.* (same layout); fc.* and
    num_batches_tracked dropped. Each BatchNorm keeps weight, bias, running_mean and gets
    running_var + eps: our FrozenBatchNorm2d (eps 0) computes weight * rsqrt(running_var) and so
    matches torchvision's eval-mode BatchNorm2d. The 3x3 of a stage in ``stage_with_dcn``
    (MODEL.RESNETS.STAGE_WITH_DCN) goes to conv2.conv.weight, where a deformable conv keeps it."""
    state_dict = _strip_module(state_dict)
    if not is_torchvision_resnet(state_dict):
        raise ValueError("not a torchvision ResNet state dict (expected keys {}; got {}...)".format(
            ", ".join(_TORCHVISION_KEYS), ", ".join(list(state_dict.keys())[:5])))
    norm_names = {name.rsplit(".", 1)[0] for name in state_dict if name.endswith(".running_var")}
    converted = OrderedDict()
    for name, value in state_dict.items():
        if name.startswith("fc.") or name.endswith(".num_batches_tracked"):
            continue
        module, _, leaf = name.rpartition(".")
        if module in norm_names and leaf == "running_var":
            # torchvision: (x - mean) / sqrt(var + eps); ours (eps 0): (x - mean) * rsqrt(var')
            value = value + eps
        elif module in norm_names and leaf not in _BN_BUFFERS:
            raise ValueError("unexpected BatchNorm entry {} in the torchvision state dict".format(name))
        if module in ("conv1", "bn1"):
            name = "stem." + name
        elif not name.startswith("layer"):
            raise ValueError("unexpected entry {} in the torchvision ResNet state dict".format(name))
        match = re.match(r"^layer(\d)\.\d+\.conv2\.weight$", name)
        if match and stage_with_dcn[int(match.group(1)) - 1]:
            name = name[:-len("weight")] + "conv.weight"
        converted[_BODY_PREFIX + name] = value
    return converted


def values_close(values, expected, tol=1e-3):
    """Each of ``values`` within ``tol`` of ``expected`` (config statistics against a convention's)."""
    return len(values) == len(expected) and all(abs(float(v) - e) <= tol for v, e in zip(values, expected))


def torchvision_config_for(cfg):
    """Our shipped config whose backbone is the one ``cfg`` builds, or None."""
    resnets = cfg.MODEL.RESNETS
    body = cfg.MODEL.BACKBONE.CONV_BODY
    depth = body.split("-")[1] if body.startswith("R-") else body  # "R-50-FPN-RETINANET" -> "50"
    layout = (depth, resnets.NUM_GROUPS, resnets.WIDTH_PER_GROUP)
    by_layout = {("50", 1, 64): "resnet50", ("101", 1, 64): "resnet101", ("101", 32, 8): "resnext101_32x8d",
                 ("101", 64, 4): "resnext101_64x4d"}
    arch = by_layout.get(layout)
    return TORCHVISION_ARCHS[arch].config if arch else None


def check_torchvision_conventions(cfg, source="torchvision weights"):
    """Raises ValueError naming the keys to set when ``cfg`` does not build the model that
    torchvision's weights expect: stride in the 3x3 conv (MODEL.RESNETS.STRIDE_IN_1X1 False)
    and RGB 0..1 input normalised by torchvision's mean/std (INPUT.TO_BGR255 False,
    INPUT.PIXEL_MEAN, INPUT.PIXEL_STD)."""
    wrong = []
    if cfg.MODEL.RESNETS.STRIDE_IN_1X1:
        wrong.append("MODEL.RESNETS.STRIDE_IN_1X1 False")
    if cfg.INPUT.TO_BGR255:
        wrong.append("INPUT.TO_BGR255 False")
    # RGB in 0..255 (INPUT.TO_RGB255, mmdetection's input) with the statistics scaled by 255 is the same input
    scale = 255.0 if cfg.INPUT.get("TO_RGB255", False) else 1.0
    mean = [scale * v for v in TORCHVISION_PIXEL_MEAN]
    std = [scale * v for v in TORCHVISION_PIXEL_STD]
    if not values_close(cfg.INPUT.PIXEL_MEAN, mean, tol=1e-3 * scale):
        wrong.append("INPUT.PIXEL_MEAN {}".format([round(v, 3) for v in mean]))
    if not values_close(cfg.INPUT.PIXEL_STD, std, tol=1e-3 * scale):
        wrong.append("INPUT.PIXEL_STD {}".format([round(v, 3) for v in std]))
    if not wrong:
        return
    shipped = torchvision_config_for(cfg)
    use = ("use {}".format(shipped) if shipped else "use one of {}".format(
        ", ".join(entry.config for entry in TORCHVISION_ARCHS.values())))
    raise ValueError("{} are torchvision ImageNet weights (stride in the 3x3 conv, RGB input in 0..1 with "
                     "torchvision's mean/std), but the config is Caffe2-style: set {}; or {}".format(
                         source, ", ".join(wrong), use))
