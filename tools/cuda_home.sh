#!/usr/bin/env bash
# Prints the CUDA toolkit's root: $CUDA_HOME when set, else the root of the nvcc on PATH (followed
# through a wrapper script that execs the real compiler, as torch cannot), else /usr/local/cuda
# when it holds nvcc; prints nothing and exits 1 when there is no toolkit.
# The one lookup of .ci/cuda_compile_check.sh, tools/device_check.sh and gpu_check.py.
if [ -n "${CUDA_HOME:-}" ]; then
  echo "$CUDA_HOME"
  exit 0
fi
if nvcc_path=$(command -v nvcc); then
  real_nvcc=$(readlink -f "$nvcc_path")
  if head -c 2 "$real_nvcc" | grep -q '#!'; then
    wrapped=$(grep -oE "/[^\"'[:space:]]*/bin/nvcc" "$real_nvcc" | head -n 1)
    [ -n "$wrapped" ] && real_nvcc=$wrapped
  fi
  dirname "$(dirname "$real_nvcc")"
  exit 0
fi
if [ -x /usr/local/cuda/bin/nvcc ]; then
  echo /usr/local/cuda
  exit 0
fi
exit 1
