"""Builds the atss_core package and its compiled extension atss_core._C.

The C++ (CPU) kernels are always built. The CUDA kernels are added when a GPU is
visible and CUDA_HOME is known, or when FORCE_CUDA=1 (compile check without GPU).
Install with `pip install --no-build-isolation -e .` (torch must already be
installed: the extension is compiled against it) or build in place with
`python setup.py build_ext --inplace`.
"""
import glob
import os

import torch
from setuptools import find_packages, setup
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = "csrc"


def cuda_requested():
    if os.environ.get("FORCE_CUDA", "0") == "1":
        if CUDA_HOME is None:
            raise RuntimeError("FORCE_CUDA=1 but CUDA_HOME is not set and nvcc was not found")
        return True
    return torch.cuda.is_available() and CUDA_HOME is not None


def pip_cuda_include_dirs():
    """Headers of the CUDA libraries that torch's wheels install under site-packages/nvidia
    (cuSPARSE, cuBLAS, ...): ATen's CUDA headers include them, and a minimal toolkit
    (nvcc + cudart only) does not ship them."""
    try:
        import nvidia
    except ImportError:
        return []
    found = []
    for base in nvidia.__path__:
        found += sorted(d for d in glob.glob(os.path.join(base, "*", "include")) if os.path.isdir(d))
    return found


def get_extensions():
    sources = sorted(glob.glob(os.path.join(CSRC, "*.cpp")) + glob.glob(os.path.join(CSRC, "cpu", "*.cpp")))
    # -fno-trapping-math lets GCC if-convert (and so vectorise) branch-free kernels
    # such as the focal loss; no op relies on floating-point exceptions.
    extra_compile_args = {"cxx": ["-O3", "-fopenmp", "-fno-trapping-math"]}
    extra_link_args = ["-fopenmp"]
    define_macros = []
    extension = CppExtension
    include_dirs = [os.path.join(ROOT, CSRC)]
    if cuda_requested():
        include_dirs += pip_cuda_include_dirs()
        extension = CUDAExtension
        sources += sorted(glob.glob(os.path.join(CSRC, "cuda", "*.cu")))
        define_macros.append(("WITH_CUDA", None))
        extra_compile_args["nvcc"] = ["-O3", "-lineinfo"]
    return [
        extension(
            "atss_core._C",
            sources,
            include_dirs=include_dirs,
            define_macros=define_macros,
            extra_compile_args=extra_compile_args,
            extra_link_args=extra_link_args,
        )
    ]


setup(
    name="atss_core",
    version="0.1.0",
    description="ATSS object detection (CVPR 2020) in a maskrcnn-benchmark-style codebase",
    packages=find_packages(exclude=("tests", "tests.*", "configs", "tools", "demo")),
    python_requires=">=3.9",
    ext_modules=get_extensions(),
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
    zip_safe=False,
)
