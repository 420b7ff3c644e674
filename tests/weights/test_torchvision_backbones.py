"""torchvision's ImageNet ResNets/ResNeXts in our body (atss_core/weights/torchvision.py): a
randomly initialised torchvision model with random BatchNorm statistics, converted and loaded
into the body built from configs/atss/torchvision/*.yaml, gives torchvision's own layer1..4
outputs (C2..C5); plus recognition of the files, the weight URLs and the convention check. No
network: the weights are random, only the enums' URLs are read."""
import os

import pytest
import torch
import torchvision
from torchvision.transforms.functional import normalize

from atss_core.config import cfg as default_cfg
from atss_core.data.transforms import transforms as T
from atss_core.layers import FrozenBatchNorm2d
from atss_core.modeling.backbone.resnet import ResNet
from atss_core.modeling.detector import build_detection_model
from atss_core.utils.model_serialization import load_state_dict
from atss_core.weights.torchvision import (TORCHVISION_ARCHS, TORCHVISION_BN_EPS, check_torchvision_conventions,
                                           convert_torchvision_resnet, is_torchvision_resnet,
                                           torchvision_weight_file_name, torchvision_weight_url)

from ..conftest import CONFIG_DIR, ROOT

TV_CONFIGS = {"resnet50": "atss_R_50_FPN_1x.yaml", "resnet101": "atss_R_101_FPN_2x.yaml",
              "resnext101_32x8d": "atss_X_101_32x8d_FPN_2x.yaml", "resnext101_64x4d": "atss_X_101_64x4d_FPN_2x.yaml"}
WEIGHTS_PREFIX = "torchvision://"


def load_cfg(*parts, opts=()):
    cfg = default_cfg.clone()
    cfg.merge_from_file(os.path.join(CONFIG_DIR, *parts))
    cfg.merge_from_list(list(opts))
    return cfg


def randomise_batch_norms(model, seed=0):
    """Random weight/bias/running_mean and running_var spread over 1e-6..1, so that eps matters
    (sqrt(1e-6) vs sqrt(1e-6 + 1e-5)); weight = sqrt(var + eps) * U(0.5, 1.5) keeps the
    effective scale near 1 so 100 layers neither vanish nor overflow."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            var = 10 ** (-6 * torch.rand(n, generator=g))
            m.running_var.copy_(var)
            m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
            m.weight.data.copy_((var + m.eps).sqrt() * (0.5 + torch.rand(n, generator=g)))
            m.bias.data.copy_(0.1 * torch.randn(n, generator=g))
    return model.eval()


def torchvision_model(arch, seed=0):
    torch.manual_seed(seed)
    return randomise_batch_norms(getattr(torchvision.models, arch)(weights=None), seed)


@torch.no_grad()
def torchvision_features(model, x):
    """[C2, C3, C4, C5]: torchvision's layer1..layer4 outputs."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    features = []
    for layer in (model.layer1, model.layer2, model.layer3, model.layer4):
        x = layer(x)
        features.append(x)
    return features


def body_state_dict(converted):
    prefix = "backbone.body."
    assert all(k.startswith(prefix) for k in converted)
    return {k[len(prefix):]: v for k, v in converted.items()}


def assert_features_close(ours, theirs, rel=1e-4):
    assert len(ours) == len(theirs) == 4
    for level, (a, b) in enumerate(zip(ours, theirs), start=2):
        assert a.shape == b.shape, "C{}".format(level)
        scale = b.abs().max().item()
        assert scale > 0
        error = (a - b).abs().max().item()
        assert error <= rel * scale, "C{}: max error {} vs magnitude {}".format(level, error, scale)


INPUT = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("arch", list(TV_CONFIGS))
def test_converted_body_reproduces_torchvision_features(arch):
    cfg = load_cfg("atss", "torchvision", TV_CONFIGS[arch])
    assert cfg.MODEL.WEIGHT == WEIGHTS_PREFIX + arch
    check_torchvision_conventions(cfg)  # the shipped config passes
    tv = torchvision_model(arch)
    body = ResNet(cfg).eval()
    body.load_state_dict(body_state_dict(convert_torchvision_resnet(tv.state_dict())), strict=True)
    with torch.no_grad():
        ours = body(INPUT)
    assert_features_close(ours, torchvision_features(tv, INPUT))


def test_resnet50_through_the_detector_and_the_checkpoint_loader():
    """backbone.body.* fills the whole body of the detector built from the config (by name, the
    way Checkpointer loads), nothing is left over, and the caffe-style stride gives other features."""
    cfg = load_cfg("atss", "torchvision", TV_CONFIGS["resnet50"])
    tv = torchvision_model("resnet50", seed=3)
    converted = convert_torchvision_resnet(tv.state_dict())
    model = build_detection_model(cfg).eval()
    report = load_state_dict(model, converted)
    body_keys = [k for k in model.state_dict() if k.startswith("backbone.body.")]
    assert sorted(report["loaded"]) == sorted(body_keys) == sorted(converted)
    assert not report["unexpected"] and not report["mismatched"]
    with torch.no_grad():
        ours = model.backbone.body(INPUT)
    reference = torchvision_features(tv, INPUT)
    assert_features_close(ours, reference)

    # the same weights in the caffe2-style body (stride in the 1x1) compute something else:
    # the comparison above can fail
    caffe_body = ResNet(load_cfg("atss", "atss_R_50_FPN_1x.yaml")).eval()
    caffe_body.load_state_dict(body_state_dict(converted), strict=True)
    with torch.no_grad():
        wrong = caffe_body(INPUT)
    with pytest.raises(AssertionError, match="C3"):
        assert_features_close(wrong, reference)


def test_batch_norms_fold_eps_into_the_frozen_norm_exactly():
    tv = torchvision_model("resnet50", seed=5)
    state = tv.state_dict()
    converted = convert_torchvision_resnet(state)
    assert not any(k.endswith("num_batches_tracked") or ".fc." in k for k in converted)
    assert len(converted) == len([k for k in state if not k.startswith("fc.") and "num_batches_tracked" not in k])
    torch.testing.assert_close(converted["backbone.body.stem.bn1.running_var"],
                               state["bn1.running_var"] + TORCHVISION_BN_EPS, rtol=0, atol=0)
    for leaf in ("weight", "bias", "running_mean"):
        assert torch.equal(converted["backbone.body.layer3.5.bn2." + leaf], state["layer3.5.bn2." + leaf])
        assert torch.equal(converted["backbone.body.layer2.0.downsample.1." + leaf],
                           state["layer2.0.downsample.1." + leaf])
    assert torch.equal(converted["backbone.body.layer2.0.downsample.0.weight"], state["layer2.0.downsample.0.weight"])

    # one norm alone, with variances far below eps: ours equals torchvision's eval BatchNorm2d,
    # while the unfolded statistics would be off by up to sqrt(11)
    bn = tv.bn1
    frozen = FrozenBatchNorm2d(bn.num_features)
    frozen.load_state_dict({k[len("backbone.body.stem.bn1."):]: v for k, v in converted.items()
                            if k.startswith("backbone.body.stem.bn1.")})
    x = torch.randn(2, bn.num_features, 5, 5, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = bn(x)
        torch.testing.assert_close(frozen(x), expected, rtol=1e-5, atol=1e-5)
        frozen.running_var.copy_(bn.running_var)
        assert not torch.allclose(frozen(x), expected, rtol=1e-3, atol=1e-3)


def test_resnext_and_deformable_stages_take_their_names():
    """A grouped ResNeXt-50 (32x4d) in an R-50 layout body; the 3x3s of deformable stages go
    to conv2.conv.weight where DFConv2d keeps its conv."""
    cfg = load_cfg("atss", "torchvision", TV_CONFIGS["resnet50"],
                   opts=["MODEL.RESNETS.NUM_GROUPS", 32, "MODEL.RESNETS.WIDTH_PER_GROUP", 4])
    tv = torchvision_model("resnext50_32x4d", seed=7)
    body = ResNet(cfg).eval()
    body.load_state_dict(body_state_dict(convert_torchvision_resnet(tv.state_dict())), strict=True)
    with torch.no_grad():
        assert_features_close(body(INPUT), torchvision_features(tv, INPUT))

    dcn = (False, True, True, True)
    converted = convert_torchvision_resnet(tv.state_dict(), stage_with_dcn=dcn)
    assert "backbone.body.layer1.0.conv2.weight" in converted
    assert "backbone.body.layer2.0.conv2.conv.weight" in converted
    assert "backbone.body.layer2.0.conv2.weight" not in converted
    dcn_cfg = cfg.clone()
    dcn_cfg.merge_from_list(["MODEL.RESNETS.STAGE_WITH_DCN", dcn, "MODEL.RESNETS.WITH_MODULATED_DCN", True])
    model_keys = set(ResNet(dcn_cfg).state_dict())
    names = set(body_state_dict(converted))
    assert names <= model_keys
    assert all(".offset" in k for k in model_keys - names), sorted(model_keys - names)[:5]


def test_is_torchvision_resnet_by_key_names():
    tv_state = torchvision.models.resnet18(weights=None).state_dict()
    assert is_torchvision_resnet(tv_state)
    assert is_torchvision_resnet({"module." + k: v for k, v in tv_state.items()})  # saved from DataParallel
    headless = {k: v for k, v in tv_state.items() if not k.startswith("fc.")}
    assert is_torchvision_resnet(headless)
    converted = convert_torchvision_resnet(tv_state)
    assert not is_torchvision_resnet(converted)  # ours: backbone.body.stem.conv1.weight ...
    assert not is_torchvision_resnet(body_state_dict(converted))  # a Caffe2 conversion: stem.conv1.weight
    assert not is_torchvision_resnet({"model": converted})
    assert not is_torchvision_resnet([])
    with pytest.raises(ValueError, match="not a torchvision ResNet"):
        convert_torchvision_resnet(converted)


def test_our_detector_checkpoint_is_not_torchvision():
    cfg = load_cfg("atss", "torchvision", TV_CONFIGS["resnet50"])
    assert not is_torchvision_resnet(build_detection_model(cfg).state_dict())


@pytest.mark.parametrize("arch", list(TV_CONFIGS))
def test_weight_urls_come_from_torchvision_enums(arch):
    enum = {"resnet50": torchvision.models.ResNet50_Weights, "resnet101": torchvision.models.ResNet101_Weights,
            "resnext101_32x8d": torchvision.models.ResNeXt101_32X8D_Weights,
            "resnext101_64x4d": torchvision.models.ResNeXt101_64X4D_Weights}[arch]
    url = torchvision_weight_url(arch)
    assert url == enum.IMAGENET1K_V1.url and url.startswith("https://download.pytorch.org/models/")
    assert torchvision_weight_file_name(arch) == url.rsplit("/", 1)[1] and url.endswith(".pth")
    assert TORCHVISION_ARCHS[arch].config == "configs/atss/torchvision/" + TV_CONFIGS[arch]
    assert os.path.isfile(os.path.join(ROOT, TORCHVISION_ARCHS[arch].config))


def test_unknown_arch_names_the_known_ones():
    with pytest.raises(ValueError, match="resnet152.*resnet50, resnet101, resnext101_32x8d, resnext101_64x4d"):
        torchvision_weight_url("resnet152")


def test_convention_check_refuses_caffe_style_configs():
    with pytest.raises(ValueError) as error:
        check_torchvision_conventions(default_cfg.clone(), source="torchvision://resnet50")
    message = str(error.value)
    for key in ("MODEL.RESNETS.STRIDE_IN_1X1 False", "INPUT.TO_BGR255 False", "INPUT.PIXEL_MEAN [0.485",
                "INPUT.PIXEL_STD [0.229", "torchvision://resnet50", "configs/atss/torchvision/atss_R_50_FPN_1x.yaml"):
        assert key in message, (key, message)

    # the official X-101 already strides in the 3x3: only the input keys are named
    with pytest.raises(ValueError) as error:
        check_torchvision_conventions(load_cfg("atss", "atss_X_101_64x4d_FPN_2x.yaml"))
    message = str(error.value)
    assert "STRIDE_IN_1X1" not in message and "INPUT.TO_BGR255 False" in message
    assert "configs/atss/torchvision/atss_X_101_64x4d_FPN_2x.yaml" in message

    # one key left Caffe-style is enough to refuse
    cfg = load_cfg("atss", "torchvision", TV_CONFIGS["resnet101"], opts=["INPUT.PIXEL_STD", [1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match=r"INPUT\.PIXEL_STD.*atss_R_101_FPN_2x\.yaml"):
        check_torchvision_conventions(cfg)


@pytest.mark.parametrize("name", sorted(TV_CONFIGS.values()))
def test_torchvision_configs_are_the_official_ones_with_the_conventions(name):
    cfg = load_cfg("atss", "torchvision", name)
    official = load_cfg("atss", name)
    assert cfg.MODEL.WEIGHT.startswith(WEIGHTS_PREFIX)
    assert not cfg.MODEL.RESNETS.STRIDE_IN_1X1 and not cfg.INPUT.TO_BGR255
    assert list(cfg.INPUT.PIXEL_MEAN) == [0.485, 0.456, 0.406]
    assert list(cfg.INPUT.PIXEL_STD) == [0.229, 0.224, 0.225]
    cfg.MODEL.WEIGHT = official.MODEL.WEIGHT
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = official.MODEL.RESNETS.STRIDE_IN_1X1
    cfg.INPUT.TO_BGR255, cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD = (
        official.INPUT.TO_BGR255, official.INPUT.PIXEL_MEAN, official.INPUT.PIXEL_STD)
    assert cfg == official


def test_normalize_gives_torchvision_input_with_those_keys():
    """Our pipeline's BGR 0..255 image, normalised with the torchvision config's keys, is
    torchvision's normalize(RGB / 255, mean, std)."""
    cfg = load_cfg("atss", "torchvision", TV_CONFIGS["resnet50"])
    bgr = torch.randint(0, 256, (3, 8, 10), generator=torch.Generator().manual_seed(4)).float()
    ours, _ = T.Normalize(cfg.INPUT.PIXEL_MEAN, cfg.INPUT.PIXEL_STD, to_bgr255=cfg.INPUT.TO_BGR255)(bgr)
    expected = normalize(bgr[[2, 1, 0]] / 255.0, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    torch.testing.assert_close(ours, expected)


def test_a_torchvision_file_through_model_weight_gives_torchvision_features(tmp_path):
    """The user's path: a torchvision state-dict file named by MODEL.WEIGHT, loaded by the
    Checkpointer (recognised by its keys, converted, eps folded) into the detector's body."""
    from atss_core.utils.checkpoint import DetectronCheckpointer

    tv = torchvision_model("resnet50", seed=3)
    path = str(tmp_path / "resnet50.pth")
    torch.save(tv.state_dict(), path)
    cfg = load_cfg("atss", "torchvision", "atss_R_50_FPN_1x.yaml", opts=["MODEL.WEIGHT", path, "MODEL.DEVICE", "cpu"])
    model = build_detection_model(cfg).eval()
    DetectronCheckpointer(cfg, model).load(cfg.MODEL.WEIGHT)
    with torch.no_grad():
        ours = model.backbone.body(INPUT)
    assert_features_close(ours, torchvision_features(tv, INPUT))
    caffe_style = load_cfg("atss", "atss_R_50_FPN_1x.yaml", opts=["MODEL.DEVICE", "cpu"])
    with pytest.raises(ValueError, match="STRIDE_IN_1X1 False.*TO_BGR255 False") as refused:
        DetectronCheckpointer(caffe_style, build_detection_model(caffe_style)).load(path)
    assert path in str(refused.value) and "configs/atss/torchvision/atss_R_50_FPN_1x.yaml" in str(refused.value)
