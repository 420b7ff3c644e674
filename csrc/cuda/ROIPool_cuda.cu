// ROIPool on the GPU: one thread per output element; the backward sends each
// gradient to its argmax pixel with atomicAdd.
#include "cuda/cuda_utils.cuh"
#include "cuda/vision.h"
#include "kernels/roi_pool_kernel.h"

namespace atss {

namespace {

template <typename T>
__global__ void roi_pool_forward_kernel(int64_t total, const T* input, const T* rois, T spatial_scale, int channels,
                                        int height, int width, int pooled_h, int pooled_w, T* output, int* argmax) {
  ATSS_CUDA_LOOP(index, total) {
    const RoiBinIndex at = roi_bin_index(index, channels, pooled_h, pooled_w);
    const T* roi = rois + 5 * at.roi;
    const T* plane = input + (static_cast<int64_t>(roi[0]) * channels + at.channel) * height * width;
    PoolWindow win = roi_pool_window(roi, spatial_scale, height, width, pooled_h, pooled_w, at.ph, at.pw);
    output[index] = roi_pool_max(plane, width, win, argmax + index);
  }
}

template <typename T>
__global__ void roi_pool_backward_kernel(int64_t total, const T* grad, const int* argmax, const T* rois, int channels,
                                         int height, int width, int bins, T* grad_input) {
  ATSS_CUDA_LOOP(index, total) {
    const int arg = argmax[index];
    if (arg < 0) continue;
    const int c = (index / bins) % channels;
    const int64_t r = index / bins / channels;
    const int64_t b = static_cast<int64_t>(rois[5 * r]);
    atomicAdd(grad_input + (b * channels + c) * height * width + arg, grad[index]);
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> roi_pool_forward_cuda(const at::Tensor& input, const at::Tensor& rois,
                                                         double spatial_scale, int64_t pooled_h, int64_t pooled_w) {
  at::cuda::CUDAGuard guard(input.device());
  at::Tensor output = at::zeros({rois.size(0), input.size(1), pooled_h, pooled_w}, input.options());
  at::Tensor argmax = at::full({rois.size(0), input.size(1), pooled_h, pooled_w}, -1, input.options().dtype(at::kInt));
  const int64_t total = output.numel();
  if (total == 0) return std::make_tuple(output, argmax);
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "roi_pool_forward_cuda", [&] {
    roi_pool_forward_kernel<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
        total, input.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(), static_cast<scalar_t>(spatial_scale),
        input.size(1), input.size(2), input.size(3), pooled_h, pooled_w, output.data_ptr<scalar_t>(),
        argmax.data_ptr<int>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return std::make_tuple(output, argmax);
}

at::Tensor roi_pool_backward_cuda(const at::Tensor& grad, const at::Tensor& argmax, const at::Tensor& rois,
                                  int64_t batch, int64_t channels, int64_t height, int64_t width) {
  at::cuda::CUDAGuard guard(grad.device());
  at::Tensor grad_input = at::zeros({batch, channels, height, width}, grad.options());
  const int64_t total = grad.numel();
  if (total == 0) return grad_input;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "roi_pool_backward_cuda", [&] {
    roi_pool_backward_kernel<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
        total, grad.data_ptr<scalar_t>(), argmax.data_ptr<int>(), rois.data_ptr<scalar_t>(), channels, height, width,
        grad.size(2) * grad.size(3), grad_input.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return grad_input;
}

}  // namespace atss
