"""The official entry for loading a state dict into a model by name; the matching and the
report live in atss_core/weights/state_dict.py."""
from atss_core.weights.state_dict import (CheckpointMismatchError, align_and_update_state_dicts,  # noqa: F401
                                          load_state_dict, strip_prefix_if_present)
