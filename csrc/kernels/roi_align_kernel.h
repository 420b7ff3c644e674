// Legacy (aligned=False) ROIAlign geometry, as in Detectron / maskrcnn-benchmark:
// roi corners scaled without the half-pixel shift, roi size clamped to >= 1,
// sampling_ratio <= 0 means ceil(roi_size / output_size) samples per bin.
#pragma once

#include "kernels/common.h"

namespace atss {

template <typename T>
struct RoiBinGeometry {
  int batch_index;
  T start_h, start_w;  // roi corner on the feature map
  T bin_h, bin_w;      // bin size
  int grid_h, grid_w;  // samples per bin along each axis
};

template <typename T>
ATSS_HD RoiBinGeometry<T> roi_align_geometry(const T* roi, T spatial_scale, int pooled_h, int pooled_w,
                                             int sampling_ratio) {
  RoiBinGeometry<T> g;
  g.batch_index = static_cast<int>(roi[0]);
  g.start_w = roi[1] * spatial_scale;
  g.start_h = roi[2] * spatial_scale;
  T roi_w = max_of(roi[3] * spatial_scale - g.start_w, static_cast<T>(1));
  T roi_h = max_of(roi[4] * spatial_scale - g.start_h, static_cast<T>(1));
  g.bin_h = roi_h / static_cast<T>(pooled_h);
  g.bin_w = roi_w / static_cast<T>(pooled_w);
  g.grid_h = sampling_ratio > 0 ? sampling_ratio : static_cast<int>(ceil(roi_h / pooled_h));
  g.grid_w = sampling_ratio > 0 ? sampling_ratio : static_cast<int>(ceil(roi_w / pooled_w));
  return g;
}

// Four neighbours and weights of a bilinear sample; valid == false when the
// point lies more than one pixel outside the map (the sample then counts as 0).
template <typename T>
struct BilinearTaps {
  bool valid;
  int y_low, x_low, y_high, x_high;
  T w_ll, w_lh, w_hl, w_hh;  // (y_low,x_low) (y_low,x_high) (y_high,x_low) (y_high,x_high)
};

template <typename T>
ATSS_HD BilinearTaps<T> roi_align_taps(int height, int width, T y, T x) {
  BilinearTaps<T> t;
  if (y < static_cast<T>(-1) || y > static_cast<T>(height) || x < static_cast<T>(-1) || x > static_cast<T>(width)) {
    t.valid = false;
    t.y_low = t.x_low = t.y_high = t.x_high = 0;
    t.w_ll = t.w_lh = t.w_hl = t.w_hh = 0;
    return t;
  }
  t.valid = true;
  if (y <= 0) y = 0;
  if (x <= 0) x = 0;
  t.y_low = static_cast<int>(y);
  t.x_low = static_cast<int>(x);
  if (t.y_low >= height - 1) {
    t.y_high = t.y_low = height - 1;
    y = static_cast<T>(t.y_low);
  } else {
    t.y_high = t.y_low + 1;
  }
  if (t.x_low >= width - 1) {
    t.x_high = t.x_low = width - 1;
    x = static_cast<T>(t.x_low);
  } else {
    t.x_high = t.x_low + 1;
  }
  T ly = y - t.y_low, lx = x - t.x_low;
  T hy = 1 - ly, hx = 1 - lx;
  t.w_ll = hy * hx;
  t.w_lh = hy * lx;
  t.w_hl = ly * hx;
  t.w_hh = ly * lx;
  return t;
}

// Sample point (iy, ix) of output bin (ph, pw).
template <typename T>
ATSS_HD void roi_align_sample_point(const RoiBinGeometry<T>& g, int ph, int pw, int iy, int ix, T* y, T* x) {
  *y = g.start_h + ph * g.bin_h + (iy + static_cast<T>(0.5)) * g.bin_h / static_cast<T>(g.grid_h);
  *x = g.start_w + pw * g.bin_w + (ix + static_cast<T>(0.5)) * g.bin_w / static_cast<T>(g.grid_w);
}

// Calls visit(taps) for every in-map sample of output bin (ph, pw).
template <typename T, typename Visit>
ATSS_HD void roi_align_visit_taps(int height, int width, const RoiBinGeometry<T>& g, int ph, int pw, Visit& visit) {
  for (int iy = 0; iy < g.grid_h; ++iy) {
    for (int ix = 0; ix < g.grid_w; ++ix) {
      T y, x;
      roi_align_sample_point(g, ph, pw, iy, ix, &y, &x);
      BilinearTaps<T> t = roi_align_taps(height, width, y, x);
      if (t.valid) visit(t);
    }
  }
}

template <typename T>
struct RoiAlignGather {
  const T* plane;
  int width;
  T sum;
  ATSS_HD void operator()(const BilinearTaps<T>& t) {
    sum += t.w_ll * plane[t.y_low * width + t.x_low] + t.w_lh * plane[t.y_low * width + t.x_high] +
           t.w_hl * plane[t.y_high * width + t.x_low] + t.w_hh * plane[t.y_high * width + t.x_high];
  }
};

template <typename T, typename AddFn>
struct RoiAlignScatter {
  T* plane;
  int width;
  T grad;
  AddFn add;
  ATSS_HD void operator()(const BilinearTaps<T>& t) {
    add(plane + t.y_low * width + t.x_low, grad * t.w_ll);
    add(plane + t.y_low * width + t.x_high, grad * t.w_lh);
    add(plane + t.y_high * width + t.x_low, grad * t.w_hl);
    add(plane + t.y_high * width + t.x_high, grad * t.w_hh);
  }
};

// Forward value of one output bin on one channel plane.
template <typename T>
ATSS_HD T roi_align_bin(const T* plane, int height, int width, const RoiBinGeometry<T>& g, int ph, int pw) {
  RoiAlignGather<T> gather{plane, width, static_cast<T>(0)};
  roi_align_visit_taps(height, width, g, ph, pw, gather);
  return gather.sum / static_cast<T>(max_of(g.grid_h * g.grid_w, 1));
}

// Backward of one output bin: scatters grad into a channel plane with `add`
// (plain += on CPU where a thread owns the plane, atomicAdd on CUDA).
template <typename T, typename AddFn>
ATSS_HD void roi_align_bin_backward(T grad, T* grad_plane, int height, int width, const RoiBinGeometry<T>& g,
                                    int ph, int pw, AddFn add) {
  RoiAlignScatter<T, AddFn> scatter{grad_plane, width, grad / static_cast<T>(max_of(g.grid_h * g.grid_w, 1)), add};
  roi_align_visit_taps(height, width, g, ph, pw, scatter);
}

}  // namespace atss
