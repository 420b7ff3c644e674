"""build_detection_model: the config's META_ARCHITECTURE, built."""
from .generalized_rcnn import GeneralizedRCNN

_DETECTION_META_ARCHITECTURES = {"GeneralizedRCNN": GeneralizedRCNN}


def build_detection_model(cfg):
    name = cfg.MODEL.META_ARCHITECTURE
    if name not in _DETECTION_META_ARCHITECTURES:
        raise KeyError("unknown MODEL.META_ARCHITECTURE {!r}; known: {}".format(
            name, ", ".join(_DETECTION_META_ARCHITECTURES)))
    return _DETECTION_META_ARCHITECTURES[name](cfg)
