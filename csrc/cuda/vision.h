// CUDA kernels of atss_core._C (inputs are already checked and contiguous).
#pragma once

#include <torch/extension.h>

#include "kernels/deform_conv_kernel.h"

namespace atss {

at::Tensor nms_cuda(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& labels, double threshold);

at::Tensor roi_align_forward_cuda(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                                 int64_t pooled_h, int64_t pooled_w, int64_t sampling_ratio);
at::Tensor roi_align_backward_cuda(const at::Tensor& grad, const at::Tensor& rois, double spatial_scale,
                                  int64_t pooled_h, int64_t pooled_w, int64_t batch, int64_t channels,
                                  int64_t height, int64_t width, int64_t sampling_ratio);

std::tuple<at::Tensor, at::Tensor> roi_pool_forward_cuda(const at::Tensor& input, const at::Tensor& rois,
                                                        double spatial_scale, int64_t pooled_h, int64_t pooled_w);
at::Tensor roi_pool_backward_cuda(const at::Tensor& grad, const at::Tensor& argmax, const at::Tensor& rois,
                                 int64_t batch, int64_t channels, int64_t height, int64_t width);

// Returns (loss, d(loss)/d(logits) or undefined when with_grad is false).
std::tuple<at::Tensor, at::Tensor> sigmoid_focal_loss_forward_cuda(const at::Tensor& logits, const at::Tensor& targets,
                                                                       double gamma, double alpha, bool reduce_sum, bool with_grad);

void deform_im2col_cuda(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                       const DeformConvShape& shape, at::Tensor& columns);
void deform_col2im_cuda(const at::Tensor& grad_columns, const at::Tensor& offset, const at::Tensor& mask,
                       const DeformConvShape& shape, at::Tensor& grad_input);
void deform_col2coord_cuda(const at::Tensor& grad_columns, const at::Tensor& input, const at::Tensor& offset,
                          const at::Tensor& mask, const DeformConvShape& shape, at::Tensor& grad_offset,
                          at::Tensor& grad_mask);

}  // namespace atss
