// Fused sigmoid focal loss on the GPU: one thread per logit writes its loss and,
// when asked, its gradient (the summed variant reduces the losses with ATen).
#include "cuda/cuda_utils.cuh"
#include "cuda/vision.h"
#include "kernels/sigmoid_focal_loss_kernel.h"

namespace atss {

namespace {

// kSquare: gamma == 2 (every config) squares instead of calling pow, as the CPU kernel does,
// so both devices compute the same expression
template <typename T, bool kSquare>
__global__ void focal_loss_kernel(int64_t total, int64_t num_classes, const T* logits, const int64_t* targets, T gamma,
                                  T alpha, T* losses, T* grad) {
  ATSS_CUDA_LOOP(i, total) {
    FocalTerm<T> term = focal_loss_element<T, kSquare>(logits[i], static_cast<int>(targets[i / num_classes]),
                                                       static_cast<int>(i % num_classes) + 1, gamma, alpha);
    losses[i] = term.loss;
    if (grad) grad[i] = term.grad;
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> sigmoid_focal_loss_forward_cuda(const at::Tensor& logits, const at::Tensor& targets,
                                                                   double gamma, double alpha, bool reduce_sum,
                                                                   bool with_grad) {
  at::cuda::CUDAGuard guard(logits.device());
  at::Tensor losses = at::empty_like(logits);
  at::Tensor grad = with_grad ? at::empty_like(logits) : at::Tensor();
  const int64_t total = logits.numel();
  if (total > 0) {
    cudaStream_t stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "sigmoid_focal_loss_forward_cuda", [&] {
      auto kernel = gamma == 2.0 ? focal_loss_kernel<scalar_t, true> : focal_loss_kernel<scalar_t, false>;
      kernel<<<grid_for(total), kThreads, 0, stream>>>(
          total, logits.size(1), logits.data_ptr<scalar_t>(), targets.data_ptr<int64_t>(),
          static_cast<scalar_t>(gamma), static_cast<scalar_t>(alpha), losses.data_ptr<scalar_t>(),
          with_grad ? grad.data_ptr<scalar_t>() : nullptr);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return std::make_tuple(reduce_sum ? losses.sum() : losses, grad);
}

}  // namespace atss
