// Launch helpers shared by the CUDA kernels.
#pragma once

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>

namespace atss {

constexpr int kThreads = 256;

inline dim3 grid_for(int64_t total) {
  int64_t blocks = (total + kThreads - 1) / kThreads;
  return dim3(static_cast<unsigned int>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535)));
}

// Grid-stride loop over [0, total).
#define ATSS_CUDA_LOOP(index, total)                                                              \
  for (int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; index < (total); \
       index += static_cast<int64_t>(blockDim.x) * gridDim.x)

// Scatter-add used by the shared backward kernels; atomic because several
// threads may hit the same input pixel.
struct AtomicAdd {
  template <typename T>
  __host__ __device__ void operator()(T* dst, T value) const {
#ifdef __CUDA_ARCH__
    atomicAdd(dst, value);
#else
    *dst += value;
#endif
  }
};

}  // namespace atss
