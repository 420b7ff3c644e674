// exp and log for float32 on the host written as branch-free polynomials, so
// that loops calling them auto-vectorise (libm calls block the vectoriser).
// Accuracy is about 1e-7 relative. On the GPU and for double the standard
// functions are used.
#pragma once

#include <bit>
#include <cstdint>

#include "kernels/common.h"

namespace atss {

#ifndef __CUDA_ARCH__
// exp(x) for x in [-86, 88]; arguments outside are clamped (exp(-86) ~ 4e-38).
inline float poly_expf(float x) {
  x = x < -86.0f ? -86.0f : (x > 88.0f ? 88.0f : x);
  // x = n * ln2 + r with |r| <= ln2 / 2; n rounded with the 1.5 * 2^23 trick
  const float shifted = x * 1.44269504088896341f + 12582912.0f;
  const float n = shifted - 12582912.0f;
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // ln2 split in two for exactness
  // Taylor series of exp(r) to degree 7: error < 2e-8 on |r| <= 0.35
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t scale = static_cast<int32_t>(n) << 23;  // multiply by 2^n through the exponent bits
  return std::bit_cast<float>(std::bit_cast<int32_t>(p) + scale);
}

// log(y) for normal, positive y.
inline float poly_logf(float y) {
  const int32_t bits = std::bit_cast<int32_t>(y);
  float k = static_cast<float>(((bits >> 23) & 0xff) - 127);
  float m = std::bit_cast<float>((bits & 0x007fffff) | 0x3f800000);  // y = m * 2^k, m in [1, 2)
  const bool high = m > 1.41421356f;
  m = high ? m * 0.5f : m;  // m in [0.707, 1.414)
  k = high ? k + 1.0f : k;
  // log(m) = 2 atanh(s) with s = (m - 1) / (m + 1), |s| <= 0.172
  const float s = (m - 1.0f) / (m + 1.0f);
  const float s2 = s * s;
  float p = 1.0f / 11.0f;
  p = p * s2 + 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return k * 0.693359375f + (2.0f * s * p - k * 2.12194440e-4f);
}
#endif

template <typename T>
ATSS_HD T fast_exp(T x) {
  return exp(x);
}

template <typename T>
ATSS_HD T fast_log(T x) {
  return log(x);
}

#ifndef __CUDA_ARCH__
template <>
inline float fast_exp<float>(float x) {
  return poly_expf(x);
}

template <>
inline float fast_log<float>(float x) {
  return poly_logf(x);
}
#endif

}  // namespace atss
