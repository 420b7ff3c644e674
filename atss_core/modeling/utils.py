"""Small helpers of the official modeling package."""
from atss_core.structures.boxlist_ops import _cat as cat  # noqa: F401  (torch.cat without a copy for one tensor)
