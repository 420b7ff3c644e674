"""One reader from a weights name to a checkpoint dict in our state-dict names, whatever
wrote the file: ours or the official code (.pth with "model"), a bare state dict, Detectron
(.pkl), torchvision's ImageNet ResNets, mmdetection's ATSS models. The name is resolved first
(sources.py: a path, catalog://, http(s)://, torchvision://, mmdet://); every file is read
safely (safe_read.py); the conventions a file implies are checked against the config
(``cfg``, optional: without it nothing is checked and nothing is converted by config)."""
import logging
import os

import torch

from atss_core.weights.caffe2 import read_caffe2_weights
from atss_core.weights.class_names import mmdet_class_names
from atss_core.weights.mmdet import check_mmdet_pairing, check_saved_conventions, convert_mmdet_atss, mmdet_state_dict
from atss_core.weights.safe_read import UntrustedWeightsError, read_torch_file
from atss_core.weights.sources import resolve_weights
from atss_core.weights.torchvision import check_torchvision_conventions, convert_torchvision_resnet, is_torchvision_resnet

_HEAD_KEY = "rpn.head.cls_logits.weight"
ANCHOR_BUFFERS = "rpn.anchor_generator."
NO_DCN = (False, False, False, False)


def trusts_weight_files(cfg):
    """MODEL.TRUST_WEIGHT_FILE: load pickles that need more than plain data (see safe_read)."""
    return bool(cfg is not None and cfg.MODEL.get("TRUST_WEIGHT_FILE", False))


def _stage_with_dcn(cfg):
    return NO_DCN if cfg is None else tuple(cfg.MODEL.RESNETS.STAGE_WITH_DCN)


def read_weights(name, cfg=None, model_state_dict=None, logger=None):
    """{"model": state dict in our names, ...} from the weights ``name``; a checkpoint of ours
    keeps its other entries (optimizer, scheduler, iteration, ...). ``model_state_dict``
    supplies what another project's file lacks (the anchor buffers of an mmdetection model)."""
    logger = logger or logging.getLogger(__name__)
    path = resolve_weights(name)
    if not os.path.isfile(path):
        raise FileNotFoundError("checkpoint/weights file not found: {}".format(path))
    trusted = trusts_weight_files(cfg)
    if path.endswith(".pkl"):
        try:
            return {"model": read_caffe2_weights(path, _stage_with_dcn(cfg), trusted=trusted)}
        except UntrustedWeightsError:
            raise
        except Exception as error:  # a truncated or foreign file
            raise RuntimeError("could not read Caffe2 weights {}: {}".format(path, error)) from error
    try:
        loaded = read_torch_file(path, trusted=trusted)
    except UntrustedWeightsError:
        raise
    except Exception as error:  # a truncated or foreign file
        raise RuntimeError("could not read checkpoint {}: {}".format(path, error)) from error
    mmdet = mmdet_state_dict(loaded)
    if mmdet is not None:  # mmdetection's names and conventions
        if cfg is not None:
            check_mmdet_pairing(cfg, True, path)
        logger.info("%s holds an mmdetection ATSS model: converted to our names", path)
        converted = convert_mmdet_atss(mmdet, stage_with_dcn=_stage_with_dcn(cfg))
        # the anchors are buffers in our state dict; mmdetection computes them from its config
        converted.update((k, v) for k, v in (model_state_dict or {}).items() if k.startswith(ANCHOR_BUFFERS))
        names = mmdet_class_names(loaded)
        return {"model": converted, "class_names": names} if names else {"model": converted}
    if isinstance(loaded, dict) and "model" in loaded and isinstance(loaded["model"], dict):
        if cfg is not None and _HEAD_KEY in loaded["model"]:  # a whole detector, not a backbone
            check_saved_conventions(cfg, loaded.get("conventions"), path)
        return loaded
    if isinstance(loaded, dict) and all(isinstance(v, torch.Tensor) for v in loaded.values()):
        if is_torchvision_resnet(loaded):  # an ImageNet ResNet of torchvision's: its names, its conventions
            if cfg is not None:
                check_torchvision_conventions(cfg, source=path)
            logger.info("%s holds a torchvision ResNet: converted into the backbone body", path)
            return {"model": convert_torchvision_resnet(loaded, stage_with_dcn=_stage_with_dcn(cfg))}
        return {"model": loaded}  # a bare state dict
    raise RuntimeError("{} is neither a checkpoint dict with a 'model' entry nor a state dict".format(path))
