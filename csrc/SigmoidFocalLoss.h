// Sigmoid focal loss: argument checks and CPU/CUDA dispatch.
#pragma once

#include "checks.h"
#include "cpu/vision.h"
#ifdef WITH_CUDA
#include "cuda/vision.h"
#endif

namespace atss {

inline at::Tensor check_focal_args(const char* op, const at::Tensor& logits, const at::Tensor& targets) {
  check_dim(logits, op, "logits", 2, "[N, num_classes]");
  check_floating(logits, op, "logits");
  check_dim(targets, op, "targets", 1, "[N] of labels (0 = background, 1..num_classes)");
  check_same_device(targets, logits, op, "targets", "logits");
  TORCH_CHECK_VALUE(targets.size(0) == logits.size(0), op, ": targets has ", targets.size(0),
                    " entries but logits has ", logits.size(0), " rows");
  TORCH_CHECK_TYPE(!at::isFloatingType(targets.scalar_type()) && targets.scalar_type() != at::kBool, op,
                   ": targets must be an integer tensor of labels, got ", targets.scalar_type());
  return targets.to(at::kLong).contiguous();
}

// reduce_sum: the summed loss (0-d) instead of the [N, C] per-element losses.
// with_grad: also return d(loss_ij)/d(logit_ij), computed in the same pass; the
// backward is then this tensor times the upstream gradient.
inline std::tuple<at::Tensor, at::Tensor> sigmoid_focal_loss_forward(const at::Tensor& logits, const at::Tensor& targets,
                                                                     double gamma, double alpha, bool reduce_sum,
                                                                     bool with_grad) {
  at::Tensor targets_c = check_focal_args("SigmoidFocalLoss", logits, targets);
  at::Tensor logits_c = logits.contiguous();
  ATSS_DISPATCH_DEVICE(logits, "SigmoidFocalLoss",
                       sigmoid_focal_loss_forward_cpu(logits_c, targets_c, gamma, alpha, reduce_sum, with_grad),
                       sigmoid_focal_loss_forward_cuda(logits_c, targets_c, gamma, alpha, reduce_sum, with_grad));
}

}  // namespace atss
