// Helpers shared by the CPU (g++) and CUDA (nvcc) builds of every kernel.
// Per-element math lives in kernels/*.h as ATSS_HD functions so that the CPU
// loops and the CUDA kernels compute exactly the same thing.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define ATSS_HD __host__ __device__ __forceinline__
#else
#define ATSS_HD inline
#endif

namespace atss {

// float overloads on the host (the C functions would compute in double); nvcc
// maps the same std:: names to its device math functions.
using std::ceil;
using std::exp;
using std::fabs;
using std::floor;
using std::log;
using std::log1p;
using std::pow;
using std::round;

template <typename T>
ATSS_HD T max_of(T a, T b) {
  return a > b ? a : b;
}

template <typename T>
ATSS_HD T min_of(T a, T b) {
  return a < b ? a : b;
}

// floor() that stays in the argument's precision (no float -> double trip on GPU).
template <typename T>
ATSS_HD int floor_to_int(T v) {
  int i = static_cast<int>(v);
  return (static_cast<T>(i) > v) ? i - 1 : i;
}

// Position of element `index` of a [rois, channels, pooled_h, pooled_w] output.
struct RoiBinIndex {
  int64_t roi;
  int channel, ph, pw;
};

ATSS_HD RoiBinIndex roi_bin_index(int64_t index, int channels, int pooled_h, int pooled_w) {
  RoiBinIndex b;
  b.pw = static_cast<int>(index % pooled_w);
  b.ph = static_cast<int>((index / pooled_w) % pooled_h);
  b.channel = static_cast<int>((index / pooled_w / pooled_h) % channels);
  b.roi = index / pooled_w / pooled_h / channels;
  return b;
}

}  // namespace atss
