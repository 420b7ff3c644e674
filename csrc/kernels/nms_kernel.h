// Overlap test of the legacy (maskrcnn-benchmark) NMS: areas use the "+1" pixel
// convention, width = x2 - x1 + 1.
#pragma once

#include "kernels/common.h"

namespace atss {

template <typename T>
ATSS_HD T legacy_box_area(const T* box) {
  return (box[2] - box[0] + 1) * (box[3] - box[1] + 1);
}

// IoU of two xyxy boxes with the +1 convention; area_a/area_b are precomputed.
template <typename T>
ATSS_HD T legacy_iou(const T* a, T area_a, const T* b, T area_b) {
  T xx1 = max_of(a[0], b[0]);
  T yy1 = max_of(a[1], b[1]);
  T xx2 = min_of(a[2], b[2]);
  T yy2 = min_of(a[3], b[3]);
  T w = max_of(static_cast<T>(0), xx2 - xx1 + 1);
  T h = max_of(static_cast<T>(0), yy2 - yy1 + 1);
  T inter = w * h;
  return inter / (area_a + area_b - inter);
}

}  // namespace atss
