"""atss_core: the ATSS object detector (CVPR 2020) in a maskrcnn-benchmark-style codebase."""

__version__ = "0.1.0"
