#!/usr/bin/env bash
# Compile-checks the CUDA build of atss_core._C (FORCE_CUDA=1), without a GPU.
# One .cu file takes minutes on 2 cores, so a successful build is remembered
# under ~/.cache/atss_core keyed by a hash of csrc/, setup.py, torch and the arch list.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}

command -v nvcc > /dev/null || { echo "cuda-check: nvcc not found, nothing to check"; exit 0; }
# nvcc may be a wrapper script that execs the real compiler: CUDA_HOME is the real one's root
CUDA_HOME=$(bash tools/cuda_home.sh)
export CUDA_HOME
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-"8.0;9.0"}
export FORCE_CUDA=1
export MAX_JOBS=${MAX_JOBS:-2}

torch_version=$("$PYTHON" -c "import torch; print(torch.__version__)")
key=$( (find csrc -type f -print0 | sort -z | xargs -0 sha256sum; sha256sum setup.py;
        echo "$torch_version $TORCH_CUDA_ARCH_LIST $CUDA_HOME") | sha256sum | cut -c1-16)
cache=${ATSS_CUDA_CACHE:-$HOME/.cache/atss_core/cuda-build}/$key
if [ -f "$cache/ok" ]; then
  echo "cuda-check: csrc/ unchanged since the last successful CUDA build ($cache), skipping"
  exit 0
fi
mkdir -p "$cache"
echo "cuda-check: building the CUDA extension with CUDA_HOME=$CUDA_HOME TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST"
start=$(date +%s)
"$PYTHON" setup.py build_ext --build-temp "$cache/temp" --build-lib "$cache/lib" > "$cache/build.log" 2>&1 || {
  grep -E "error" -A3 "$cache/build.log" | head -n 80
  echo "cuda-check: FAILED, full log in $cache/build.log"
  exit 1
}
so=$(find "$cache/lib" -name '_C*.so' | head -n 1)
# (no grep -q: it would close the pipe early and pipefail would report nm's SIGPIPE)
symbols=$(nm -C -D "$so")
grep "atss::nms_cuda" <<< "$symbols" > /dev/null || { echo "cuda-check: FAILED, $so has no CUDA kernels"; exit 1; }
touch "$cache/ok"
echo "cuda-check: CUDA build OK in $(( $(date +%s) - start )) s ($so)"
