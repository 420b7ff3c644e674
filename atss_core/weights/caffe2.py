"""Caffe2 / Detectron ImageNet weights (.pkl) -> atss_core ResNet names, following the
official conversion (res2_0_branch2a_w -> layer1.0.conv1.weight, *_bn_s/_bn_b -> bn weight/bias)."""
import re
from collections import OrderedDict

import numpy as np
import torch

from atss_core.weights.safe_read import read_caffe2_pickle


def rename_c2_resnet_weights(layer_keys):
    """Caffe2 blob names -> our ResNet body names (no "backbone.body." prefix)."""
    renamed = []
    for key in layer_keys:
        k = key.replace("_", ".")
        k = re.sub(r"\.w$", ".weight", k)
        k = re.sub(r"\.b$", ".bias", k)
        k = re.sub(r"^(res\.)?conv1\.(bn|gn)\.", "bn1.", k)  # stem norm: res_conv1_bn_{s,b}, conv1_gn_{s,b}
        k = re.sub(r"^conv1\.", "stem.conv1.", k)
        k = re.sub(r"^bn1\.", "stem.bn1.", k)
        k = k.replace(".bn.s", ".bn.weight").replace(".gn.s", ".gn.weight")
        k = re.sub(r"\.s$", ".weight", k)
        for stage in range(2, 6):
            k = re.sub(r"^res{}\.".format(stage), "layer{}.".format(stage - 1), k)
        k = k.replace(".branch1.bn.", ".downsample.1.").replace(".branch1.gn.", ".downsample.1.")
        k = k.replace(".branch1.", ".downsample.0.")
        for c2, ours in (("2a", "1"), ("2b", "2"), ("2c", "3")):
            k = k.replace(".branch{}.bn.".format(c2), ".bn{}.".format(ours))
            k = k.replace(".branch{}.gn.".format(c2), ".bn{}.".format(ours))
            k = k.replace(".branch{}.".format(c2), ".conv{}.".format(ours))
        renamed.append(k)
    return renamed


def _rename_for_deformable_stages(state_dict, stage_with_dcn):
    """A deformable 3x3 lives in conv2.conv: move the plain conv2 weights of those stages there."""
    result = OrderedDict()
    for key, value in state_dict.items():
        match = re.match(r"^layer(\d)\.(\d+)\.conv2\.weight$", key)
        if match and stage_with_dcn[int(match.group(1)) - 1]:
            key = key.replace("conv2.weight", "conv2.conv.weight")
        result[key] = value
    return result


def read_caffe2_weights(path, stage_with_dcn=(False, False, False, False), trusted=False):
    """Reads a Detectron .pkl (dict of numpy arrays, optionally under "blobs") into a state dict
    of our ResNet body names; the classifier (fc1000) and momentum blobs are dropped; the 3x3
    convs of the ``stage_with_dcn`` stages go to their deformable conv. Only NumPy data is
    unpickled unless ``trusted`` (see safe_read)."""
    data = read_caffe2_pickle(path, trusted=trusted)
    if not isinstance(data, dict):
        raise ValueError("{} holds a {}, not a dict of weight arrays".format(path, type(data).__name__))
    if "blobs" in data:
        data = data["blobs"]
    blobs = OrderedDict((k, v) for k, v in data.items()
                        if not k.endswith("_momentum") and not k.startswith("fc1000") and isinstance(v, np.ndarray))
    renamed = rename_c2_resnet_weights(list(blobs.keys()))
    state_dict = OrderedDict((new, torch.from_numpy(np.ascontiguousarray(blobs[old])))
                             for old, new in zip(blobs.keys(), renamed))
    return _rename_for_deformable_stages(state_dict, stage_with_dcn)
