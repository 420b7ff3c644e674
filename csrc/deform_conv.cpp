// Device-independent driver of deformable convolution: argument checks, the
// per-image im2col -> grouped GEMM, and the backward GEMMs. Only the three
// im2col-style kernels differ between CPU and CUDA.
#include "deform_conv.h"

#include "checks.h"
#include "cpu/vision.h"
#ifdef WITH_CUDA
#include "cuda/vision.h"
#endif

namespace atss {

namespace {

constexpr const char* kOp = "deform_conv";

void im2col(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask, const DeformConvShape& s,
            at::Tensor& columns) {
#ifdef WITH_CUDA
  if (input.is_cuda()) return deform_im2col_cuda(input, offset, mask, s, columns);
#endif
  deform_im2col_cpu(input, offset, mask, s, columns);
}

void col2im(const at::Tensor& grad_columns, const at::Tensor& offset, const at::Tensor& mask,
            const DeformConvShape& s, at::Tensor& grad_input) {
#ifdef WITH_CUDA
  if (grad_columns.is_cuda()) return deform_col2im_cuda(grad_columns, offset, mask, s, grad_input);
#endif
  deform_col2im_cpu(grad_columns, offset, mask, s, grad_input);
}

void col2coord(const at::Tensor& grad_columns, const at::Tensor& input, const at::Tensor& offset,
               const at::Tensor& mask, const DeformConvShape& s, at::Tensor& grad_offset, at::Tensor& grad_mask) {
#ifdef WITH_CUDA
  if (input.is_cuda()) return deform_col2coord_cuda(grad_columns, input, offset, mask, s, grad_offset, grad_mask);
#endif
  deform_col2coord_cpu(grad_columns, input, offset, mask, s, grad_offset, grad_mask);
}

DeformConvShape check_and_shape(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& offset,
                                const at::Tensor& mask, const at::Tensor& bias, int64_t stride_h, int64_t stride_w,
                                int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w,
                                int64_t groups, int64_t deformable_groups) {
#ifndef WITH_CUDA
  if (input.is_cuda()) fail_no_cuda(kOp);
#endif
  check_dim(input, kOp, "input", 4, "[N, C, H, W]");
  check_floating(input, kOp, "input");
  check_dim(weight, kOp, "weight", 4, "[out_channels, in_channels / groups, kh, kw]");
  check_like(weight, input, kOp, "weight", "input");
  check_dim(offset, kOp, "offset", 4, "[N, 2 * deformable_groups * kh * kw, out_h, out_w]");
  check_like(offset, input, kOp, "offset", "input");
  TORCH_CHECK_VALUE(stride_h > 0 && stride_w > 0 && dilation_h > 0 && dilation_w > 0 && pad_h >= 0 && pad_w >= 0,
                    kOp, ": stride and dilation must be positive and padding non-negative");
  TORCH_CHECK_VALUE(groups > 0 && deformable_groups > 0, kOp, ": groups and deformable_groups must be positive");
  DeformConvShape s;
  s.channels = input.size(1);
  s.height = input.size(2);
  s.width = input.size(3);
  s.kernel_h = weight.size(2);
  s.kernel_w = weight.size(3);
  s.pad_h = pad_h;
  s.pad_w = pad_w;
  s.stride_h = stride_h;
  s.stride_w = stride_w;
  s.dilation_h = dilation_h;
  s.dilation_w = dilation_w;
  s.deformable_groups = deformable_groups;
  s.out_h = (s.height + 2 * pad_h - (dilation_h * (s.kernel_h - 1) + 1)) / stride_h + 1;
  s.out_w = (s.width + 2 * pad_w - (dilation_w * (s.kernel_w - 1) + 1)) / stride_w + 1;
  TORCH_CHECK_VALUE(s.out_h > 0 && s.out_w > 0, kOp, ": input ", input.sizes(), " is too small for a ", s.kernel_h,
                    "x", s.kernel_w, " kernel with this padding and dilation");
  TORCH_CHECK_VALUE(s.channels % groups == 0 && weight.size(0) % groups == 0, kOp,
                    ": in_channels (", s.channels, ") and out_channels (", weight.size(0),
                    ") must be divisible by groups (", groups, ")");
  TORCH_CHECK_VALUE(weight.size(1) * groups == s.channels, kOp, ": weight has ", weight.size(1),
                    " input channels per group but input has ", s.channels, " channels and groups = ", groups);
  TORCH_CHECK_VALUE(s.channels % deformable_groups == 0, kOp, ": in_channels (", s.channels,
                    ") must be divisible by deformable_groups (", deformable_groups, ")");
  const int64_t K = s.kernel_h * s.kernel_w;
  TORCH_CHECK_VALUE(offset.size(0) == input.size(0) && offset.size(1) == 2 * deformable_groups * K &&
                        offset.size(2) == s.out_h && offset.size(3) == s.out_w,
                    kOp, ": offset must have shape [", input.size(0), ", ", 2 * deformable_groups * K, ", ", s.out_h,
                    ", ", s.out_w, "], got ", offset.sizes());
  if (mask.defined()) {
    check_like(mask, input, kOp, "mask", "input");
    TORCH_CHECK_VALUE(mask.dim() == 4 && mask.size(0) == input.size(0) && mask.size(1) == deformable_groups * K &&
                          mask.size(2) == s.out_h && mask.size(3) == s.out_w,
                      kOp, ": mask must have shape [", input.size(0), ", ", deformable_groups * K, ", ", s.out_h, ", ",
                      s.out_w, "], got ", mask.sizes());
  }
  if (bias.defined()) {
    check_like(bias, input, kOp, "bias", "input");
    TORCH_CHECK_VALUE(bias.dim() == 1 && bias.size(0) == weight.size(0), kOp, ": bias must have shape [",
                      weight.size(0), "], got ", bias.sizes());
  }
  return s;
}

at::Tensor contiguous_or_undefined(const c10::optional<at::Tensor>& t) {
  return (t.has_value() && t->defined()) ? t->contiguous() : at::Tensor();
}

at::Tensor image(const at::Tensor& t, int64_t b) { return t.defined() ? t[b] : at::Tensor(); }

}  // namespace

at::Tensor deform_conv_forward(const at::Tensor& input_, const at::Tensor& weight_, const at::Tensor& offset_,
                               const c10::optional<at::Tensor>& mask_, const c10::optional<at::Tensor>& bias_,
                               int64_t stride_h, int64_t stride_w, int64_t pad_h, int64_t pad_w, int64_t dilation_h,
                               int64_t dilation_w, int64_t groups, int64_t deformable_groups) {
  at::Tensor input = input_.contiguous(), weight = weight_.contiguous(), offset = offset_.contiguous();
  at::Tensor mask = contiguous_or_undefined(mask_), bias = contiguous_or_undefined(bias_);
  DeformConvShape s = check_and_shape(input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w, dilation_h,
                                      dilation_w, groups, deformable_groups);
  const int64_t batch = input.size(0), out_channels = weight.size(0);
  const int64_t K = s.kernel_h * s.kernel_w, L = static_cast<int64_t>(s.out_h) * s.out_w;
  at::Tensor output = at::empty({batch, out_channels, s.out_h, s.out_w}, input.options());
  if (batch == 0) return output;
  at::Tensor columns = at::empty({s.channels * K, L}, input.options());
  at::Tensor w = weight.view({groups, out_channels / groups, -1});
  for (int64_t b = 0; b < batch; ++b) {
    im2col(input[b], offset[b], image(mask, b), s, columns);
    at::Tensor out_b = output[b].view({groups, out_channels / groups, L});
    at::bmm_out(out_b, w, columns.view({groups, -1, L}));
  }
  if (bias.defined()) output.add_(bias.view({1, out_channels, 1, 1}));
  return output;
}

std::vector<c10::optional<at::Tensor>> deform_conv_backward(
    const at::Tensor& grad_output_, const at::Tensor& input_, const at::Tensor& weight_, const at::Tensor& offset_,
    const c10::optional<at::Tensor>& mask_, const c10::optional<at::Tensor>& bias_, int64_t stride_h, int64_t stride_w,
    int64_t pad_h, int64_t pad_w, int64_t dilation_h, int64_t dilation_w, int64_t groups, int64_t deformable_groups) {
  at::Tensor input = input_.contiguous(), weight = weight_.contiguous(), offset = offset_.contiguous();
  at::Tensor mask = contiguous_or_undefined(mask_), bias = contiguous_or_undefined(bias_);
  at::Tensor grad_output = grad_output_.contiguous();
  DeformConvShape s = check_and_shape(input, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w, dilation_h,
                                      dilation_w, groups, deformable_groups);
  const int64_t batch = input.size(0), out_channels = weight.size(0);
  const int64_t K = s.kernel_h * s.kernel_w, L = static_cast<int64_t>(s.out_h) * s.out_w;
  TORCH_CHECK_VALUE(grad_output.sizes() == at::IntArrayRef({batch, out_channels, s.out_h, s.out_w}), kOp,
                    ": grad_output has shape ", grad_output.sizes(), ", expected the forward output's shape");
  at::Tensor grad_input = at::zeros_like(input);
  at::Tensor grad_offset = at::zeros_like(offset);
  at::Tensor grad_mask = mask.defined() ? at::zeros_like(mask) : at::Tensor();
  at::Tensor grad_weight = at::zeros_like(weight);
  if (batch > 0) {
    at::Tensor columns = at::empty({s.channels * K, L}, input.options());
    at::Tensor grad_columns = at::empty({s.channels * K, L}, input.options());
    at::Tensor w_t = weight.view({groups, out_channels / groups, -1}).transpose(1, 2);
    at::Tensor gw = grad_weight.view({groups, out_channels / groups, -1});
    at::Tensor grad_columns_grouped = grad_columns.view({groups, -1, L});
    for (int64_t b = 0; b < batch; ++b) {
      at::Tensor go = grad_output[b].view({groups, out_channels / groups, L});
      at::bmm_out(grad_columns_grouped, w_t, go);
      at::Tensor gin_b = grad_input[b], goff_b = grad_offset[b], gmask_b = image(grad_mask, b);
      col2coord(grad_columns, input[b], offset[b], image(mask, b), s, goff_b, gmask_b);
      col2im(grad_columns, offset[b], image(mask, b), s, gin_b);
      im2col(input[b], offset[b], image(mask, b), s, columns);
      gw.baddbmm_(go, columns.view({groups, -1, L}).transpose(1, 2));
    }
  }
  c10::optional<at::Tensor> grad_bias;
  if (bias.defined()) grad_bias = grad_output.sum({0, 2, 3});
  c10::optional<at::Tensor> grad_mask_opt;
  if (grad_mask.defined()) grad_mask_opt = grad_mask;
  return {grad_input, grad_weight, grad_offset, grad_mask_opt, grad_bias};
}

}  // namespace atss
