import os
import sys

import pytest
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

CUDA_REASON = "no CUDA device; the CUDA variant runs where a GPU exists"

# on a machine with a GPU the CUDA variants run: an extension built without CUDA kernels
# then fails them (it is a broken build there, not a reason to skip)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason=CUDA_REASON))]


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == "cuda":
        from atss_core import _C

        if not _C.built_with_cuda():
            pytest.fail("a CUDA device is present but atss_core._C was built without CUDA kernels: rebuild it "
                        "with CUDA_HOME set (make clean && make build)")
    return torch.device(request.param)

SHARED_DIR = os.environ.get("ATSS_SHARED_DIR", os.path.join(os.path.dirname(ROOT), "shared"))
CONFIG_DIR = os.path.join(ROOT, "configs")


def shared_path(*parts):
    """A file under ../shared, or a pytest skip naming what is missing."""
    path = os.path.join(SHARED_DIR, *parts)
    if not os.path.exists(path):
        pytest.skip("{} not found (../shared is not beside this checkout; set ATSS_SHARED_DIR)".format(path))
    return path
