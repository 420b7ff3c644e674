"""Reading weight files without running code they may carry. A pickle can name any Python
callable to be called while it loads; a downloaded .pth or .pkl is untrusted input:

- .pth files load with torch.load(weights_only=True): tensors, numbers, strings, lists,
  tuples and dicts, which is all that official and atss_core checkpoints hold;
- Detectron .pkl files load through an unpickler that admits only NumPy arrays, dtypes and
  scalars besides the built-in containers.

Anything else is refused with an UntrustedWeightsError naming the file and the object; the
config key MODEL.TRUST_WEIGHT_FILE True loads such a file the old, unrestricted way."""
import pickle

import torch

OPT_IN_KEY = "MODEL.TRUST_WEIGHT_FILE"

# (module, name) pairs a Detectron / Caffe2 weights pickle needs
_CAFFE2_PICKLE_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),  # arrays written with pickle protocol 5
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # bytes written by Python 3 with pickle protocol 2
    ("collections", "OrderedDict"),
}


class UntrustedWeightsError(ValueError):
    """A weights file that needs more than plain data to load."""


def _refusal(path, what):
    return UntrustedWeightsError(
        "refused to load {}: it contains {}, which a weights file does not need and which could run code "
        "while loading. If you trust where this file comes from, add `{} True` to the command line (or the "
        "config) to load it without this check".format(path, what, OPT_IN_KEY))


class _Caffe2Unpickler(pickle.Unpickler):
    def __init__(self, file, path):
        super().__init__(file, encoding="latin1")  # Detectron wrote them with Python 2
        self.path = path

    def find_class(self, module, name):
        if (module, name) in _CAFFE2_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise _refusal(self.path, "a reference to {}.{}".format(module, name))


def _check_arrays(value, path):
    """Arrays must be plain numbers: a dtype's pickled state could otherwise declare objects."""
    import numpy as np

    if isinstance(value, dict):
        for item in value.values():
            _check_arrays(item, path)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_arrays(item, path)
    elif isinstance(value, (np.ndarray, np.generic)):
        if value.dtype.hasobject:
            raise _refusal(path, "an array whose dtype ({}) declares Python objects".format(value.dtype))
        if value.dtype.kind not in "biufc":
            raise _refusal(path, "an array of the non-numeric dtype {}".format(value.dtype))


def read_caffe2_pickle(path, trusted=False):
    with open(path, "rb") as f:
        if trusted:
            return pickle.load(f, encoding="latin1")
        data = _Caffe2Unpickler(f, path).load()
    _check_arrays(data, path)
    return data


def read_torch_file(path, trusted=False):
    """torch.load on the CPU; ``trusted`` lifts the weights-only restriction."""
    if trusted:
        return torch.load(path, map_location=torch.device("cpu"), weights_only=False)
    try:
        return torch.load(path, map_location=torch.device("cpu"), weights_only=True)
    except pickle.UnpicklingError as error:
        # a refused global is what a code-running pickle needs; other failures are corrupt files
        detail = [line for line in str(error).splitlines() if "GLOBAL" in line]
        if not detail:
            raise
        raise _refusal(path, "a Python object beyond tensors and plain data ({})".format(
            detail[0].strip().rstrip("."))) from None
