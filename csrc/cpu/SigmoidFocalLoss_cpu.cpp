// Fused sigmoid focal loss on the CPU: one pass over the logits computes the
// loss (per element, or summed without materialising the [N, C] losses) and
// one pass computes the gradient, instead of torchvision's chain of ops.
#include <ATen/Parallel.h>

#include "cpu/vision.h"
#include "kernels/sigmoid_focal_loss_kernel.h"

namespace atss {

namespace {
constexpr int64_t kGrain = 4096;
}

at::Tensor sigmoid_focal_loss_forward_cpu(const at::Tensor& logits, const at::Tensor& targets, double gamma,
                                          double alpha, bool reduce_sum) {
  const int64_t num_classes = logits.size(1);
  const int64_t total = logits.numel();
  at::Tensor losses = reduce_sum ? at::zeros({}, logits.options()) : at::empty_like(logits);
  if (total == 0) return losses;
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "sigmoid_focal_loss_forward_cpu", [&] {
    const scalar_t* x = logits.data_ptr<scalar_t>();
    const int64_t* t = targets.data_ptr<int64_t>();
    const scalar_t g = static_cast<scalar_t>(gamma), a = static_cast<scalar_t>(alpha);
    if (reduce_sum) {
      double sum = at::parallel_reduce(
          0, total, kGrain, 0.0,
          [&](int64_t begin, int64_t end, double acc) {
            scalar_t chunk = 0, loss, grad;
            for (int64_t i = begin; i < end; ++i) {
              focal_loss_element(x[i], t[i / num_classes], i % num_classes + 1, g, a, &loss, &grad);
              chunk += loss;
            }
            return acc + static_cast<double>(chunk);
          },
          [](double u, double v) { return u + v; });
      losses.fill_(sum);
    } else {
      scalar_t* out = losses.data_ptr<scalar_t>();
      at::parallel_for(0, total, kGrain, [&](int64_t begin, int64_t end) {
        scalar_t grad;
        for (int64_t i = begin; i < end; ++i)
          focal_loss_element(x[i], t[i / num_classes], i % num_classes + 1, g, a, out + i, &grad);
      });
    }
  });
  return losses;
}

at::Tensor sigmoid_focal_loss_backward_cpu(const at::Tensor& logits, const at::Tensor& targets,
                                           const at::Tensor& d_losses, double gamma, double alpha) {
  const int64_t num_classes = logits.size(1);
  const int64_t total = logits.numel();
  at::Tensor grad_logits = at::empty_like(logits);
  if (total == 0) return grad_logits;
  const bool scalar_grad = d_losses.numel() == 1;
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "sigmoid_focal_loss_backward_cpu", [&] {
    const scalar_t* x = logits.data_ptr<scalar_t>();
    const int64_t* t = targets.data_ptr<int64_t>();
    const scalar_t* d = d_losses.data_ptr<scalar_t>();
    scalar_t* out = grad_logits.data_ptr<scalar_t>();
    const scalar_t g = static_cast<scalar_t>(gamma), a = static_cast<scalar_t>(alpha);
    at::parallel_for(0, total, kGrain, [&](int64_t begin, int64_t end) {
      scalar_t loss, grad;
      for (int64_t i = begin; i < end; ++i) {
        focal_loss_element(x[i], t[i / num_classes], i % num_classes + 1, g, a, &loss, &grad);
        out[i] = grad * (scalar_grad ? d[0] : d[i]);
      }
    });
  });
  return grad_logits;
}

}  // namespace atss
