"""The official entry for Detectron / Caffe2 ImageNet weights (.pkl); the reading and renaming
live in atss_core/weights/caffe2.py."""
from atss_core.weights.caffe2 import read_caffe2_weights, rename_c2_resnet_weights  # noqa: F401
from atss_core.weights.reader import trusts_weight_files


def load_c2_format(cfg, f):
    """{"model": state dict of our ResNet body names} from the .pkl ``f``, for the config's
    MODEL.RESNETS.STAGE_WITH_DCN (MODEL.TRUST_WEIGHT_FILE lifts the NumPy-only restriction)."""
    return {"model": read_caffe2_weights(f, tuple(cfg.MODEL.RESNETS.STAGE_WITH_DCN), trusted=trusts_weight_files(cfg))}


load_resnet_c2_format = load_c2_format  # the official name of the ResNet loader load_c2_format picks
