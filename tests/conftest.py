import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

CUDA_REASON = "no CUDA device (or atss_core._C built without CUDA); the CUDA variant runs where a GPU exists"


def _cuda_usable():
    if not torch.cuda.is_available():
        return False
    from atss_core import _C

    return _C.built_with_cuda()


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not _cuda_usable(), reason=CUDA_REASON))]


@pytest.fixture(params=DEVICES)
def device(request):
    return torch.device(request.param)

SHARED_DIR = os.environ.get("ATSS_SHARED_DIR", os.path.join(os.path.dirname(ROOT), "shared"))
CONFIG_DIR = os.path.join(ROOT, "configs")


def shared_path(*parts):
    """A file under ../shared, or a pytest skip naming what is missing."""
    path = os.path.join(SHARED_DIR, *parts)
    if not os.path.exists(path):
        pytest.skip("{} not found (../shared is not beside this checkout; set ATSS_SHARED_DIR)".format(path))
    return path
