// Legacy ROIAlign on the GPU: one thread per output element; the backward
// scatters with atomicAdd.
#include "cuda/cuda_utils.cuh"
#include "cuda/vision.h"
#include "kernels/roi_align_kernel.h"

namespace atss {

namespace {

template <typename T>
__global__ void roi_align_forward_kernel(int64_t total, const T* input, const T* rois, T spatial_scale, int channels,
                                         int height, int width, int pooled_h, int pooled_w, int sampling_ratio,
                                         T* output) {
  ATSS_CUDA_LOOP(index, total) {
    const RoiBinIndex at = roi_bin_index(index, channels, pooled_h, pooled_w);
    RoiBinGeometry<T> g = roi_align_geometry(rois + 5 * at.roi, spatial_scale, pooled_h, pooled_w, sampling_ratio);
    const T* plane = input + (static_cast<int64_t>(g.batch_index) * channels + at.channel) * height * width;
    output[index] = roi_align_bin(plane, height, width, g, at.ph, at.pw);
  }
}

template <typename T>
__global__ void roi_align_backward_kernel(int64_t total, const T* grad, const T* rois, T spatial_scale, int channels,
                                          int height, int width, int pooled_h, int pooled_w, int sampling_ratio,
                                          T* grad_input) {
  ATSS_CUDA_LOOP(index, total) {
    const RoiBinIndex at = roi_bin_index(index, channels, pooled_h, pooled_w);
    RoiBinGeometry<T> g = roi_align_geometry(rois + 5 * at.roi, spatial_scale, pooled_h, pooled_w, sampling_ratio);
    T* plane = grad_input + (static_cast<int64_t>(g.batch_index) * channels + at.channel) * height * width;
    roi_align_bin_backward(grad[index], plane, height, width, g, at.ph, at.pw, AtomicAdd());
  }
}

}  // namespace

at::Tensor roi_align_forward_cuda(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                                  int64_t pooled_h, int64_t pooled_w, int64_t sampling_ratio) {
  at::cuda::CUDAGuard guard(input.device());
  at::Tensor output = at::zeros({rois.size(0), input.size(1), pooled_h, pooled_w}, input.options());
  const int64_t total = output.numel();
  if (total == 0) return output;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "roi_align_forward_cuda", [&] {
    roi_align_forward_kernel<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
        total, input.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(), static_cast<scalar_t>(spatial_scale),
        input.size(1), input.size(2), input.size(3), pooled_h, pooled_w, sampling_ratio, output.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return output;
}

at::Tensor roi_align_backward_cuda(const at::Tensor& grad, const at::Tensor& rois, double spatial_scale,
                                   int64_t pooled_h, int64_t pooled_w, int64_t batch, int64_t channels,
                                   int64_t height, int64_t width, int64_t sampling_ratio) {
  at::cuda::CUDAGuard guard(grad.device());
  at::Tensor grad_input = at::zeros({batch, channels, height, width}, grad.options());
  const int64_t total = grad.numel();
  if (total == 0) return grad_input;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "roi_align_backward_cuda", [&] {
    roi_align_backward_kernel<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
        total, grad.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(), static_cast<scalar_t>(spatial_scale), channels,
        height, width, pooled_h, pooled_w, sampling_ratio, grad_input.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return grad_input;
}

}  // namespace atss
