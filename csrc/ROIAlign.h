// ROIAlign (legacy, aligned=False) and ROIPool: argument checks and CPU/CUDA dispatch.
#pragma once

#include "checks.h"
#include "cpu/vision.h"
#ifdef WITH_CUDA
#include "cuda/vision.h"
#endif

namespace atss {

// An out-of-range batch index would read (forward) or scatter (backward) outside the feature
// map: on the GPU that corrupts other memory. Checked on both devices (on CUDA it costs one
// device-to-host copy of two numbers).
inline void check_roi_batch_index(const char* op, const at::Tensor& rois, int64_t batch) {
  if (rois.size(0) == 0) return;
  at::Tensor index = rois.select(1, 0);
  at::Tensor range = at::stack({index.min(), index.max()}).to(at::kCPU, at::kDouble);
  const double lo = range[0].item<double>(), hi = range[1].item<double>();
  TORCH_CHECK_VALUE(lo >= 0 && hi < batch, op, ": rois[:, 0] (batch index) must lie in [0, ", batch - 1,
                    "], got values in [", lo, ", ", hi, "]");
}

inline void check_roi_args(const char* op, const at::Tensor& input, const at::Tensor& rois, int64_t pooled_h,
                           int64_t pooled_w) {
  check_dim(input, op, "input", 4, "[N, C, H, W]");
  check_floating(input, op, "input");
  check_dim(rois, op, "rois", 2, "[K, 5] (batch_index, x1, y1, x2, y2)");
  TORCH_CHECK_VALUE(rois.size(1) == 5, op, ": rois must have shape [K, 5] (batch_index, x1, y1, x2, y2), got ",
                    rois.sizes());
  check_like(rois, input, op, "rois", "input");
  TORCH_CHECK_VALUE(pooled_h > 0 && pooled_w > 0, op, ": output_size must be positive, got (", pooled_h, ", ",
                    pooled_w, ")");
  check_roi_batch_index(op, rois, input.size(0));
}

inline at::Tensor ROIAlign_forward(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                                   int64_t pooled_h, int64_t pooled_w, int64_t sampling_ratio) {
  check_roi_args("ROIAlign", input, rois, pooled_h, pooled_w);
  at::Tensor input_c = input.contiguous(), rois_c = rois.contiguous();
  ATSS_DISPATCH_DEVICE(input, "ROIAlign",
                       roi_align_forward_cpu(input_c, rois_c, spatial_scale, pooled_h, pooled_w, sampling_ratio),
                       roi_align_forward_cuda(input_c, rois_c, spatial_scale, pooled_h, pooled_w, sampling_ratio));
}

inline at::Tensor ROIAlign_backward(const at::Tensor& grad, const at::Tensor& rois, double spatial_scale,
                                    int64_t pooled_h, int64_t pooled_w, int64_t batch, int64_t channels,
                                    int64_t height, int64_t width, int64_t sampling_ratio) {
  check_like(grad, rois, "ROIAlign backward", "grad", "rois");
  check_roi_batch_index("ROIAlign backward", rois, batch);
  at::Tensor grad_c = grad.contiguous(), rois_c = rois.contiguous();
  ATSS_DISPATCH_DEVICE(grad, "ROIAlign",
                       roi_align_backward_cpu(grad_c, rois_c, spatial_scale, pooled_h, pooled_w, batch, channels,
                                              height, width, sampling_ratio),
                       roi_align_backward_cuda(grad_c, rois_c, spatial_scale, pooled_h, pooled_w, batch, channels,
                                               height, width, sampling_ratio));
}

inline std::tuple<at::Tensor, at::Tensor> ROIPool_forward(const at::Tensor& input, const at::Tensor& rois,
                                                          double spatial_scale, int64_t pooled_h,
                                                          int64_t pooled_w) {
  check_roi_args("ROIPool", input, rois, pooled_h, pooled_w);
  at::Tensor input_c = input.contiguous(), rois_c = rois.contiguous();
  ATSS_DISPATCH_DEVICE(input, "ROIPool", roi_pool_forward_cpu(input_c, rois_c, spatial_scale, pooled_h, pooled_w),
                       roi_pool_forward_cuda(input_c, rois_c, spatial_scale, pooled_h, pooled_w));
}

inline at::Tensor ROIPool_backward(const at::Tensor& grad, const at::Tensor& argmax, const at::Tensor& rois,
                                   int64_t batch, int64_t channels, int64_t height, int64_t width) {
  check_like(grad, rois, "ROIPool backward", "grad", "rois");
  check_roi_batch_index("ROIPool backward", rois, batch);
  at::Tensor grad_c = grad.contiguous(), argmax_c = argmax.contiguous(), rois_c = rois.contiguous();
  ATSS_DISPATCH_DEVICE(grad, "ROIPool", roi_pool_backward_cpu(grad_c, argmax_c, rois_c, batch, channels, height, width),
                       roi_pool_backward_cuda(grad_c, argmax_c, rois_c, batch, channels, height, width));
}

}  // namespace atss
