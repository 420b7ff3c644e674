// Deformable convolution v1 (mask undefined) and v2 (modulated, with mask).
#pragma once

#include <torch/extension.h>

namespace atss {

at::Tensor deform_conv_forward(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& offset,
                               const c10::optional<at::Tensor>& mask, const c10::optional<at::Tensor>& bias,
                               int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dilation_h,
                               int64_t dilation_w, int64_t groups, int64_t deformable_groups);

// Returns (grad_input, grad_weight, grad_offset, grad_mask or None, grad_bias or None).
std::vector<c10::optional<at::Tensor>> deform_conv_backward(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight, const at::Tensor& offset,
    const c10::optional<at::Tensor>& mask, const c10::optional<at::Tensor>& bias, int64_t stride_h, int64_t stride_w,
    int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w, int64_t groups, int64_t deformable_groups);

}  // namespace atss
