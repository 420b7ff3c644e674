"""Chooses the dense head ("rpn") from the config."""
from atss_core.modeling.registry import RPN_HEADS

from .atss import atss  # noqa: F401  (registers "ATSS")

# the official config enables a head with a MODEL.<flag>; its RPN_HEADS name
HEAD_FLAGS = {"ATSS_ON": "ATSS", "FCOS_ON": "FCOS", "RETINANET_ON": "RetinaNet"}


def build_rpn(cfg, in_channels):
    enabled = [flag for flag in HEAD_FLAGS if getattr(cfg.MODEL, flag)]
    if len(enabled) != 1:
        raise ValueError("exactly one of {} must be True; got {}".format(
            ", ".join("MODEL." + flag for flag in HEAD_FLAGS),
            ", ".join("{}={}".format(flag, getattr(cfg.MODEL, flag)) for flag in HEAD_FLAGS)))
    return RPN_HEADS[HEAD_FLAGS[enabled[0]]](cfg, in_channels)
