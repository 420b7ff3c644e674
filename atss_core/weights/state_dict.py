"""Loading a state dict into a model by name, with every missing, unexpected and
shape-mismatched key reported by name."""
import logging
from collections import OrderedDict


def strip_prefix_if_present(state_dict, prefix):
    """Removes ``prefix`` (e.g. "module." from DistributedDataParallel) when every key has it."""
    keys = list(state_dict.keys())
    if not keys or not all(key.startswith(prefix) for key in keys):
        return state_dict
    return OrderedDict((key[len(prefix):], value) for key, value in state_dict.items())


def align_and_update_state_dicts(model_state_dict, loaded_state_dict):
    """Fills ``model_state_dict`` from ``loaded_state_dict``: each model key takes the loaded
    key that is its longest suffix on a '.' boundary (so ImageNet "layer1.0.conv1.weight"
    fills "backbone.body.layer1.0.conv1.weight"). Returns a report dict with "loaded",
    "missing", "unexpected" and "mismatched" (key, model shape, loaded shape)."""
    loaded_keys = list(loaded_state_dict.keys())
    report = {"loaded": [], "missing": [], "unexpected": [], "mismatched": []}
    used = set()
    for model_key in model_state_dict.keys():
        best = None
        for loaded_key in loaded_keys:
            if model_key == loaded_key or model_key.endswith("." + loaded_key):
                if best is None or len(loaded_key) > len(best):
                    best = loaded_key
        if best is None:
            report["missing"].append(model_key)
            continue
        used.add(best)
        value = loaded_state_dict[best]
        if tuple(value.shape) != tuple(model_state_dict[model_key].shape):
            report["mismatched"].append((model_key, tuple(model_state_dict[model_key].shape), tuple(value.shape)))
            continue
        model_state_dict[model_key] = value
        report["loaded"].append(model_key)
    report["unexpected"] = [key for key in loaded_keys if key not in used]
    return report


class CheckpointMismatchError(ValueError):
    """Weights that do not fit the model built from the config."""


def _mismatch_message(report, source):
    parts = []
    if report["mismatched"]:
        parts.append("{} tensor(s) of another shape: {}".format(len(report["mismatched"]), "; ".join(
            "{} model {} vs checkpoint {}".format(*m) for m in report["mismatched"][:10])))
    if report["missing"]:
        parts.append("{} tensor(s) missing: {}".format(len(report["missing"]), ", ".join(report["missing"][:10])))
    return ("{} does not fit the model built from the config ({}). Check MODEL.ATSS.NUM_CLASSES, "
            "MODEL.BACKBONE.CONV_BODY and the other model keys against the config the weights were trained "
            "with".format(source, "; ".join(parts)))


def load_state_dict(model, loaded_state_dict, logger=None, strict=False, source="the checkpoint"):
    """Loads what matches and logs the rest by name; returns the report. ``strict``: a missing
    or shape-mismatched tensor raises CheckpointMismatchError naming them, and the model is
    left untouched (evaluation and resuming need every tensor)."""
    logger = logger or logging.getLogger(__name__)
    model_state_dict = model.state_dict()
    loaded_state_dict = strip_prefix_if_present(loaded_state_dict, prefix="module.")
    report = align_and_update_state_dicts(model_state_dict, loaded_state_dict)
    if strict and (report["missing"] or report["mismatched"]):
        raise CheckpointMismatchError(_mismatch_message(report, source))
    model.load_state_dict(model_state_dict)
    logger.info("loaded %d of %d model tensors", len(report["loaded"]), len(model_state_dict))
    for key, model_shape, loaded_shape in report["mismatched"]:
        logger.warning("shape mismatch, kept the model's initialisation: %s model %s vs checkpoint %s", key,
                       model_shape, loaded_shape)
    if report["missing"]:
        logger.warning("missing in the checkpoint (%d): %s", len(report["missing"]), ", ".join(report["missing"]))
    if report["unexpected"]:
        logger.warning("unused checkpoint entries (%d): %s", len(report["unexpected"]),
                       ", ".join(report["unexpected"]))
    return report
