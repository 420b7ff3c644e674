// ROIPool (Fast R-CNN max pooling) geometry: roi corners rounded to the
// feature grid, roi size inclusive (+1), bins clipped to the map.
#pragma once

#include "kernels/common.h"

namespace atss {

struct PoolWindow {
  int h_start, h_end, w_start, w_end;  // half-open, clipped to the map
};

template <typename T>
ATSS_HD PoolWindow roi_pool_window(const T* roi, T spatial_scale, int height, int width, int pooled_h,
                                   int pooled_w, int ph, int pw) {
  int roi_start_w = static_cast<int>(round(roi[1] * spatial_scale));
  int roi_start_h = static_cast<int>(round(roi[2] * spatial_scale));
  int roi_end_w = static_cast<int>(round(roi[3] * spatial_scale));
  int roi_end_h = static_cast<int>(round(roi[4] * spatial_scale));
  int roi_w = max_of(roi_end_w - roi_start_w + 1, 1);
  int roi_h = max_of(roi_end_h - roi_start_h + 1, 1);
  T bin_h = static_cast<T>(roi_h) / static_cast<T>(pooled_h);
  T bin_w = static_cast<T>(roi_w) / static_cast<T>(pooled_w);
  PoolWindow win;
  win.h_start = static_cast<int>(floor(static_cast<T>(ph) * bin_h)) + roi_start_h;
  win.w_start = static_cast<int>(floor(static_cast<T>(pw) * bin_w)) + roi_start_w;
  win.h_end = static_cast<int>(ceil(static_cast<T>(ph + 1) * bin_h)) + roi_start_h;
  win.w_end = static_cast<int>(ceil(static_cast<T>(pw + 1) * bin_w)) + roi_start_w;
  win.h_start = min_of(max_of(win.h_start, 0), height);
  win.h_end = min_of(max_of(win.h_end, 0), height);
  win.w_start = min_of(max_of(win.w_start, 0), width);
  win.w_end = min_of(max_of(win.w_end, 0), width);
  return win;
}

// Max over the window of one channel plane; an empty window gives 0 and argmax -1.
template <typename T>
ATSS_HD T roi_pool_max(const T* plane, int width, const PoolWindow& win, int* argmax) {
  if (win.h_end <= win.h_start || win.w_end <= win.w_start) {
    *argmax = -1;
    return 0;
  }
  int best_index = win.h_start * width + win.w_start;
  T best = plane[best_index];
  for (int h = win.h_start; h < win.h_end; ++h) {
    const T* row = plane + h * width;
    for (int w = win.w_start; w < win.w_end; ++w) {
      if (row[w] > best) {
        best = row[w];
        best_index = h * width + w;
      }
    }
  }
  *argmax = best_index;
  return best;
}

}  // namespace atss
