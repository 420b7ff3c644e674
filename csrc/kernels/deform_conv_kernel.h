// Deformable convolution v1/v2 (Dai et al. 2017, Zhu et al. 2019) as im2col.
//
// One image at a time. Shapes (K = kernel_h * kernel_w, L = out_h * out_w):
//   input   [C, H, W]
//   offset  [2 * deformable_groups * K, out_h, out_w]; channel 2*(g*K + k) is dy, +1 is dx
//   mask    [deformable_groups * K, out_h, out_w] (v2 only; nullptr means all ones = v1)
//   columns [C * K, L]; row c*K + k holds channel c sampled at kernel tap k
// A sample outside (-1, H) x (-1, W) is 0; corners outside the map count as 0.
#pragma once

#include "kernels/common.h"

namespace atss {

struct DeformConvShape {
  int channels, height, width;
  int kernel_h, kernel_w;
  int pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w;
  int out_h, out_w;
  int deformable_groups;
};

ATSS_HD int deform_channels_per_group(const DeformConvShape& s) { return s.channels / s.deformable_groups; }

// Where kernel tap k of output pixel `pix` samples the input, for deformable group dg.
template <typename T>
ATSS_HD void deform_sample_point(const DeformConvShape& s, const T* offset, const T* mask, int dg, int k, int pix,
                                 T* y, T* x, T* m) {
  int L = s.out_h * s.out_w;
  int K = s.kernel_h * s.kernel_w;
  int oh = pix / s.out_w, ow = pix % s.out_w;
  int ki = k / s.kernel_w, kj = k % s.kernel_w;
  T dy = offset[(2 * (dg * K + k)) * L + pix];
  T dx = offset[(2 * (dg * K + k) + 1) * L + pix];
  *y = static_cast<T>(oh * s.stride_h - s.pad_h + ki * s.dilation_h) + dy;
  *x = static_cast<T>(ow * s.stride_w - s.pad_w + kj * s.dilation_w) + dx;
  *m = mask ? mask[(dg * K + k) * L + pix] : static_cast<T>(1);
}

template <typename T>
ATSS_HD bool deform_inside(int height, int width, T y, T x) {
  return y > static_cast<T>(-1) && y < static_cast<T>(height) && x > static_cast<T>(-1) && x < static_cast<T>(width);
}

template <typename T>
ATSS_HD T deform_pixel(const T* plane, int height, int width, int y, int x) {
  return (y >= 0 && y < height && x >= 0 && x < width) ? plane[y * width + x] : static_cast<T>(0);
}

template <typename T>
ATSS_HD T deform_bilinear(const T* plane, int height, int width, T y, T x) {
  if (!deform_inside(height, width, y, x)) return 0;
  int y0 = floor_to_int(y), x0 = floor_to_int(x);
  T ly = y - y0, lx = x - x0, hy = 1 - ly, hx = 1 - lx;
  return hy * hx * deform_pixel(plane, height, width, y0, x0) + hy * lx * deform_pixel(plane, height, width, y0, x0 + 1) +
         ly * hx * deform_pixel(plane, height, width, y0 + 1, x0) + ly * lx * deform_pixel(plane, height, width, y0 + 1, x0 + 1);
}

// columns[c*K + k, pix] for every tap k of channel c at output pixel pix.
template <typename T>
ATSS_HD void deform_im2col_at(const DeformConvShape& s, const T* input, const T* offset, const T* mask, int c, int pix,
                              T* columns) {
  int K = s.kernel_h * s.kernel_w;
  int L = s.out_h * s.out_w;
  int dg = c / deform_channels_per_group(s);
  const T* plane = input + static_cast<int64_t>(c) * s.height * s.width;
  for (int k = 0; k < K; ++k) {
    T y, x, m;
    deform_sample_point(s, offset, mask, dg, k, pix, &y, &x, &m);
    columns[(static_cast<int64_t>(c) * K + k) * L + pix] = m * deform_bilinear(plane, s.height, s.width, y, x);
  }
}

// Scatters grad_columns[c*K + k, pix] back to the input plane of channel c with `add`.
template <typename T, typename AddFn>
ATSS_HD void deform_col2im_at(const DeformConvShape& s, const T* grad_columns, const T* offset, const T* mask, int c, int k,
                              int pix, T* grad_input, AddFn add) {
  int K = s.kernel_h * s.kernel_w;
  int L = s.out_h * s.out_w;
  int dg = c / deform_channels_per_group(s);
  T y, x, m;
  deform_sample_point(s, offset, mask, dg, k, pix, &y, &x, &m);
  if (!deform_inside(s.height, s.width, y, x)) return;
  T g = m * grad_columns[(static_cast<int64_t>(c) * K + k) * L + pix];
  T* plane = grad_input + static_cast<int64_t>(c) * s.height * s.width;
  int y0 = floor_to_int(y), x0 = floor_to_int(x);
  T ly = y - y0, lx = x - x0, hy = 1 - ly, hx = 1 - lx;
  if (y0 >= 0 && x0 >= 0) add(plane + y0 * s.width + x0, g * hy * hx);
  if (y0 >= 0 && x0 + 1 < s.width) add(plane + y0 * s.width + x0 + 1, g * hy * lx);
  if (y0 + 1 < s.height && x0 >= 0) add(plane + (y0 + 1) * s.width + x0, g * ly * hx);
  if (y0 + 1 < s.height && x0 + 1 < s.width) add(plane + (y0 + 1) * s.width + x0 + 1, g * ly * lx);
}

// Gradients of the offsets (dy, dx) and of the mask for tap k of group dg at
// output pixel pix: a reduction over the channels of the group.
template <typename T>
ATSS_HD void deform_col2coord_at(const DeformConvShape& s, const T* grad_columns, const T* input, const T* offset,
                                 const T* mask, int dg, int k, int pix, T* grad_offset, T* grad_mask) {
  int K = s.kernel_h * s.kernel_w;
  int L = s.out_h * s.out_w;
  T y, x, m;
  deform_sample_point(s, offset, mask, dg, k, pix, &y, &x, &m);
  T g_dy = 0, g_dx = 0, g_m = 0;
  if (deform_inside(s.height, s.width, y, x)) {
    int y0 = floor_to_int(y), x0 = floor_to_int(x);
    T ly = y - y0, lx = x - x0, hy = 1 - ly, hx = 1 - lx;
    int cpg = deform_channels_per_group(s);
    for (int c = dg * cpg; c < (dg + 1) * cpg; ++c) {
      const T* plane = input + static_cast<int64_t>(c) * s.height * s.width;
      T v00 = deform_pixel(plane, s.height, s.width, y0, x0);
      T v01 = deform_pixel(plane, s.height, s.width, y0, x0 + 1);
      T v10 = deform_pixel(plane, s.height, s.width, y0 + 1, x0);
      T v11 = deform_pixel(plane, s.height, s.width, y0 + 1, x0 + 1);
      T gc = grad_columns[(static_cast<int64_t>(c) * K + k) * L + pix];
      g_dy += gc * (hx * (v10 - v00) + lx * (v11 - v01));
      g_dx += gc * (hy * (v01 - v00) + ly * (v11 - v10));
      g_m += gc * (hy * hx * v00 + hy * lx * v01 + ly * hx * v10 + ly * lx * v11);
    }
  }
  grad_offset[(2 * (dg * K + k)) * L + pix] = m * g_dy;
  grad_offset[(2 * (dg * K + k) + 1) * L + pix] = m * g_dx;
  if (grad_mask) grad_mask[(dg * K + k) * L + pix] = g_m;
}

}  // namespace atss
