"""Chooses the dense head ("rpn") from the config."""
from atss_core.modeling.registry import RPN_HEADS

from .atss import atss  # noqa: F401  (registers "ATSS")


def build_rpn(cfg, in_channels):
    if cfg.MODEL.ATSS_ON:
        return RPN_HEADS["ATSS"](cfg, in_channels)
    raise ValueError("only the ATSS head is implemented: set MODEL.ATSS_ON True (got RETINANET_ON={}, FCOS_ON={})"
                     .format(cfg.MODEL.RETINANET_ON, cfg.MODEL.FCOS_ON))
