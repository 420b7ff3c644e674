// Sigmoid focal loss on the GPU: one thread per logit for the loss and for the
// gradient (the summed variant reduces the per-element losses with ATen).
#include "cuda/cuda_utils.cuh"
#include "cuda/vision.h"
#include "kernels/sigmoid_focal_loss_kernel.h"

namespace atss {

namespace {

template <typename T>
__global__ void focal_loss_forward_kernel(int64_t total, int64_t num_classes, const T* logits, const int64_t* targets,
                                          T gamma, T alpha, T* losses) {
  ATSS_CUDA_LOOP(i, total) {
    T grad;
    focal_loss_element(logits[i], targets[i / num_classes], i % num_classes + 1, gamma, alpha, losses + i, &grad);
  }
}

template <typename T>
__global__ void focal_loss_backward_kernel(int64_t total, int64_t num_classes, const T* logits, const int64_t* targets,
                                           const T* d_losses, bool scalar_grad, T gamma, T alpha, T* grad_logits) {
  ATSS_CUDA_LOOP(i, total) {
    T loss, grad;
    focal_loss_element(logits[i], targets[i / num_classes], i % num_classes + 1, gamma, alpha, &loss, &grad);
    grad_logits[i] = grad * (scalar_grad ? d_losses[0] : d_losses[i]);
  }
}

}  // namespace

at::Tensor sigmoid_focal_loss_forward_cuda(const at::Tensor& logits, const at::Tensor& targets, double gamma,
                                           double alpha, bool reduce_sum) {
  at::cuda::CUDAGuard guard(logits.device());
  at::Tensor losses = at::empty_like(logits);
  const int64_t total = logits.numel();
  if (total > 0) {
    cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "sigmoid_focal_loss_forward_cuda", [&] {
      focal_loss_forward_kernel<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
          total, logits.size(1), logits.data_ptr<scalar_t>(), targets.data_ptr<int64_t>(),
          static_cast<scalar_t>(gamma), static_cast<scalar_t>(alpha), losses.data_ptr<scalar_t>());
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return reduce_sum ? losses.sum() : losses;
}

at::Tensor sigmoid_focal_loss_backward_cuda(const at::Tensor& logits, const at::Tensor& targets,
                                            const at::Tensor& d_losses, double gamma, double alpha) {
  at::cuda::CUDAGuard guard(logits.device());
  at::Tensor grad_logits = at::empty_like(logits);
  const int64_t total = logits.numel();
  if (total == 0) return grad_logits;
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "sigmoid_focal_loss_backward_cuda", [&] {
    focal_loss_backward_kernel<scalar_t><<<grid_for(total), kThreads, 0, stream>>>(
        total, logits.size(1), logits.data_ptr<scalar_t>(), targets.data_ptr<int64_t>(), d_losses.data_ptr<scalar_t>(),
        d_losses.numel() == 1, static_cast<scalar_t>(gamma), static_cast<scalar_t>(alpha),
        grad_logits.data_ptr<scalar_t>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return grad_logits;
}

}  // namespace atss
