"""Loads the compiled extension atss_core._C with a message that says how to build it."""
import torch

try:
    from atss_core import _C  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "atss_core._C (the compiled ops) could not be imported: {}. Build it with `make setup`, "
        "`pip install --no-build-isolation -e .` or `python setup.py build_ext --inplace` "
        "from the repository root.".format(error)
    ) from error

_REDUCED_PRECISION = (torch.float16, torch.bfloat16)


def as_float32_if_half(*tensors):
    """Our kernels run in float32/float64; half inputs (autocast) are computed in float32."""
    return tuple(t.float() if t is not None and t.dtype in _REDUCED_PRECISION else t for t in tensors)
