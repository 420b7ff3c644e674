"""A description of the environment for the start of every log."""
import platform

import torch
import torchvision


def get_pil_version():
    """The Pillow version line of the official environment report."""
    try:
        import PIL
    except ImportError:
        return "\n        Pillow: not installed"
    return "\n        Pillow ({})".format(PIL.__version__)


def collect_env_info():
    """The environment report (the official name of get_pretty_env_info)."""
    return get_pretty_env_info() + get_pil_version()


def get_pretty_env_info():
    lines = [
        "Python: {}".format(platform.python_version()),
        "Platform: {}".format(platform.platform()),
        "PyTorch: {} (CUDA {})".format(torch.__version__, torch.version.cuda),
        "torchvision: {}".format(torchvision.__version__),
        "CPU threads: {}".format(torch.get_num_threads()),
        "CUDA available: {}".format(torch.cuda.is_available()),
    ]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            lines.append("GPU {}: {}".format(i, torch.cuda.get_device_name(i)))
    try:
        from atss_core import _C

        lines.append("atss_core._C: built{}".format(" with CUDA kernels" if _C.built_with_cuda() else " (CPU only)"))
    except ImportError as error:
        lines.append("atss_core._C: NOT BUILT ({})".format(error))
    return "\n".join(lines)
