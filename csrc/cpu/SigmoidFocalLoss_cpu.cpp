// Fused sigmoid focal loss on the CPU: a single pass over the logits gives the
// loss (per element, or summed without materialising the [N, C] losses) and,
// when asked, d(loss)/d(logits) for the backward, instead of torchvision's chain
// of elementwise ops in both directions. Rows run in parallel; the loop over a
// row's classes is branch-free and vectorised.
#include <ATen/Parallel.h>

#include "cpu/vision.h"
#include "kernels/sigmoid_focal_loss_kernel.h"

namespace atss {

namespace {

// Sum of the losses of rows [begin, end); kLosses / kGrad write the per-element
// losses / gradients (compile-time, so the inner loop has no branches).
template <typename T, bool kSquare, bool kLosses, bool kGrad>
double focal_rows(const T* x, const int64_t* t, int64_t classes, int64_t begin, int64_t end, T gamma, T alpha,
                  T* out, T* dx) {
  double total = 0;
  for (int64_t r = begin; r < end; ++r) {
    const int target = static_cast<int>(t[r]);
    const T* xr = x + r * classes;
    T* out_r = out + (kLosses ? r * classes : 0);
    T* dx_r = dx + (kGrad ? r * classes : 0);
    T row_sum = 0;
#pragma omp simd reduction(+ : row_sum)
    for (int c = 0; c < classes; ++c) {
      const FocalTerm<T> term = focal_loss_element<T, kSquare>(xr[c], target, c + 1, gamma, alpha);
      row_sum += term.loss;
      if constexpr (kLosses) out_r[c] = term.loss;
      if constexpr (kGrad) dx_r[c] = term.grad;
    }
    total += row_sum;
  }
  return total;
}

template <typename T, bool kSquare, bool kLosses, bool kGrad>
void focal_forward(const at::Tensor& logits, const at::Tensor& targets, double gamma, double alpha,
                   at::Tensor& losses, at::Tensor& grad) {
  const int64_t rows = logits.size(0), classes = logits.size(1);
  const int64_t grain = std::max<int64_t>(1, 8192 / classes);
  const T* x = logits.data_ptr<T>();
  const int64_t* t = targets.data_ptr<int64_t>();
  T* out = kLosses ? losses.data_ptr<T>() : nullptr;
  T* dx = kGrad ? grad.data_ptr<T>() : nullptr;
  const T g = static_cast<T>(gamma), a = static_cast<T>(alpha);
  auto run = [&](int64_t begin, int64_t end) {
    return focal_rows<T, kSquare, kLosses, kGrad>(x, t, classes, begin, end, g, a, out, dx);
  };
  if (kLosses) {
    at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) { run(begin, end); });
  } else {
    double sum = at::parallel_reduce(
        0, rows, grain, 0.0, [&](int64_t begin, int64_t end, double acc) { return acc + run(begin, end); },
        [](double u, double v) { return u + v; });
    losses.fill_(sum);
  }
}

template <typename T, bool kSquare>
void focal_forward(const at::Tensor& logits, const at::Tensor& targets, double gamma, double alpha,
                   bool reduce_sum, at::Tensor& losses, at::Tensor& grad) {
  const bool with_grad = grad.defined();
  if (reduce_sum && with_grad) focal_forward<T, kSquare, false, true>(logits, targets, gamma, alpha, losses, grad);
  if (reduce_sum && !with_grad) focal_forward<T, kSquare, false, false>(logits, targets, gamma, alpha, losses, grad);
  if (!reduce_sum && with_grad) focal_forward<T, kSquare, true, true>(logits, targets, gamma, alpha, losses, grad);
  if (!reduce_sum && !with_grad) focal_forward<T, kSquare, true, false>(logits, targets, gamma, alpha, losses, grad);
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> sigmoid_focal_loss_forward_cpu(const at::Tensor& logits, const at::Tensor& targets,
                                                                  double gamma, double alpha, bool reduce_sum,
                                                                  bool with_grad) {
  at::Tensor losses = reduce_sum ? at::zeros({}, logits.options()) : at::empty_like(logits);
  at::Tensor grad = with_grad ? at::empty_like(logits) : at::Tensor();
  if (logits.numel() == 0) return std::make_tuple(losses, grad);
  AT_DISPATCH_FLOATING_TYPES(logits.scalar_type(), "sigmoid_focal_loss_forward_cpu", [&] {
    if (gamma == 2.0)
      focal_forward<scalar_t, true>(logits, targets, gamma, alpha, reduce_sum, losses, grad);
    else
      focal_forward<scalar_t, false>(logits, targets, gamma, alpha, reduce_sum, losses, grad);
  });
  return std::make_tuple(losses, grad);
}

}  // namespace atss
