// Deformable-convolution im2col kernels on the CPU (the GEMMs are in
// deform_conv.cpp). col2im runs channels in parallel: a channel's columns only
// write that channel's input plane, so no two threads touch the same memory.
#include <ATen/Parallel.h>

#include "cpu/vision.h"
#include "tensor_utils.h"

namespace atss {

void deform_im2col_cpu(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                       const DeformConvShape& s, at::Tensor& columns) {
  const int64_t L = static_cast<int64_t>(s.out_h) * s.out_w;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "deform_im2col_cpu", [&] {
    const scalar_t* in = input.data_ptr<scalar_t>();
    const scalar_t* off = offset.data_ptr<scalar_t>();
    const scalar_t* msk = optional_data<scalar_t>(mask);
    scalar_t* col = columns.data_ptr<scalar_t>();
    at::parallel_for(0, s.channels * L, 256, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) deform_im2col_at(s, in, off, msk, i / L, i % L, col);
    });
  });
}

void deform_col2im_cpu(const at::Tensor& grad_columns, const at::Tensor& offset, const at::Tensor& mask,
                       const DeformConvShape& s, at::Tensor& grad_input) {
  const int K = s.kernel_h * s.kernel_w;
  const int L = s.out_h * s.out_w;
  AT_DISPATCH_FLOATING_TYPES(grad_columns.scalar_type(), "deform_col2im_cpu", [&] {
    const scalar_t* gcol = grad_columns.data_ptr<scalar_t>();
    const scalar_t* off = offset.data_ptr<scalar_t>();
    const scalar_t* msk = optional_data<scalar_t>(mask);
    scalar_t* gin = grad_input.data_ptr<scalar_t>();
    auto add = [](scalar_t* dst, scalar_t v) { *dst += v; };
    at::parallel_for(0, s.channels, 1, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c)
        for (int k = 0; k < K; ++k)
          for (int pix = 0; pix < L; ++pix) deform_col2im_at(s, gcol, off, msk, c, k, pix, gin, add);
    });
  });
}

void deform_col2coord_cpu(const at::Tensor& grad_columns, const at::Tensor& input, const at::Tensor& offset,
                          const at::Tensor& mask, const DeformConvShape& s, at::Tensor& grad_offset,
                          at::Tensor& grad_mask) {
  const int K = s.kernel_h * s.kernel_w;
  const int L = s.out_h * s.out_w;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "deform_col2coord_cpu", [&] {
    const scalar_t* gcol = grad_columns.data_ptr<scalar_t>();
    const scalar_t* in = input.data_ptr<scalar_t>();
    const scalar_t* off = offset.data_ptr<scalar_t>();
    const scalar_t* msk = optional_data<scalar_t>(mask);
    scalar_t* goff = grad_offset.data_ptr<scalar_t>();
    scalar_t* gmask = optional_data<scalar_t>(grad_mask);
    at::parallel_for(0, static_cast<int64_t>(s.deformable_groups) * K * L, 64, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int dg = i / (static_cast<int64_t>(K) * L);
        const int k = (i / L) % K;
        deform_col2coord_at(s, gcol, in, off, msk, dg, k, static_cast<int>(i % L), goff, gmask);
      }
    });
  });
}

}  // namespace atss
