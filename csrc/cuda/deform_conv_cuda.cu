// Deformable-convolution im2col kernels on the GPU (the GEMMs are in
// deform_conv.cpp): one thread per column entry, atomicAdd in col2im.
#include "cuda/cuda_utils.cuh"
#include "cuda/vision.h"
#include "tensor_utils.h"

namespace atss {

namespace {

template <typename T>
__global__ void deform_im2col_kernel(int64_t total, DeformConvShape s, const T* input, const T* offset, const T* mask,
                                     T* columns) {
  const int L = s.out_h * s.out_w;
  ATSS_CUDA_LOOP(i, total) { deform_im2col_at(s, input, offset, mask, static_cast<int>(i / L), static_cast<int>(i % L), columns); }
}

template <typename T>
__global__ void deform_col2im_kernel(int64_t total, DeformConvShape s, const T* grad_columns, const T* offset,
                                     const T* mask, T* grad_input) {
  const int K = s.kernel_h * s.kernel_w;
  const int L = s.out_h * s.out_w;
  ATSS_CUDA_LOOP(i, total) {
    const int c = static_cast<int>(i / (static_cast<int64_t>(K) * L));
    const int k = static_cast<int>((i / L) % K);
    deform_col2im_at(s, grad_columns, offset, mask, c, k, static_cast<int>(i % L), grad_input, AtomicAdd());
  }
}

template <typename T>
__global__ void deform_col2coord_kernel(int64_t total, DeformConvShape s, const T* grad_columns, const T* input,
                                        const T* offset, const T* mask, T* grad_offset, T* grad_mask) {
  const int K = s.kernel_h * s.kernel_w;
  const int L = s.out_h * s.out_w;
  ATSS_CUDA_LOOP(i, total) {
    const int dg = static_cast<int>(i / (static_cast<int64_t>(K) * L));
    const int k = static_cast<int>((i / L) % K);
    deform_col2coord_at(s, grad_columns, input, offset, mask, dg, k, static_cast<int>(i % L), grad_offset, grad_mask);
  }
}

}  // namespace

void deform_im2col_cuda(const at::Tensor& input, const at::Tensor& offset, const at::Tensor& mask,
                        const DeformConvShape& s, at::Tensor& columns) {
  at::cuda::CUDAGuard guard(input.device());
  const int64_t total = static_cast<int64_t>(s.channels) * s.out_h * s.out_w;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "deform_im2col_cuda", [&] {
    deform_im2col_kernel<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
        total, s, input.data_ptr<scalar_t>(), offset.data_ptr<scalar_t>(), optional_data<scalar_t>(mask),
        columns.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void deform_col2im_cuda(const at::Tensor& grad_columns, const at::Tensor& offset, const at::Tensor& mask,
                        const DeformConvShape& s, at::Tensor& grad_input) {
  at::cuda::CUDAGuard guard(grad_columns.device());
  const int64_t total = static_cast<int64_t>(s.channels) * s.kernel_h * s.kernel_w * s.out_h * s.out_w;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(grad_columns.scalar_type(), "deform_col2im_cuda", [&] {
    deform_col2im_kernel<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
        total, s, grad_columns.data_ptr<scalar_t>(), offset.data_ptr<scalar_t>(), optional_data<scalar_t>(mask),
        grad_input.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void deform_col2coord_cuda(const at::Tensor& grad_columns, const at::Tensor& input, const at::Tensor& offset,
                           const at::Tensor& mask, const DeformConvShape& s, at::Tensor& grad_offset,
                           at::Tensor& grad_mask) {
  at::cuda::CUDAGuard guard(input.device());
  const int64_t total = static_cast<int64_t>(s.deformable_groups) * s.kernel_h * s.kernel_w * s.out_h * s.out_w;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "deform_col2coord_cuda", [&] {
    deform_col2coord_kernel<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
        total, s, grad_columns.data_ptr<scalar_t>(), input.data_ptr<scalar_t>(), offset.data_ptr<scalar_t>(),
        optional_data<scalar_t>(mask), grad_offset.data_ptr<scalar_t>(),
        optional_data<scalar_t>(grad_mask));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace atss
