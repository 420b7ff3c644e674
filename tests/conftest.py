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
