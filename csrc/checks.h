// Argument checks shared by every op: each failure names the argument and what
// was expected, so Python callers see e.g. "ROIAlign: rois must be ...".
#pragma once

#include <torch/extension.h>

namespace atss {

inline void check_dim(const at::Tensor& t, const char* op, const char* name, int64_t dim, const char* layout) {
  TORCH_CHECK_VALUE(t.dim() == dim, op, ": ", name, " must be a ", dim, "-D tensor ", layout, ", got shape ",
                    t.sizes());
}

inline void check_floating(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_TYPE(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, op, ": ", name,
                   " must be float32 or float64, got ", t.scalar_type());
}

inline void check_like(const at::Tensor& t, const at::Tensor& ref, const char* op, const char* name,
                       const char* ref_name) {
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), op, ": ", name, " must have the dtype of ", ref_name, " (",
                   ref.scalar_type(), "), got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == ref.device(), op, ": ", name, " must be on the device of ", ref_name, " (",
                    ref.device(), "), got ", t.device());
}

inline void check_same_device(const at::Tensor& t, const at::Tensor& ref, const char* op, const char* name,
                              const char* ref_name) {
  TORCH_CHECK_VALUE(t.device() == ref.device(), op, ": ", name, " must be on the device of ", ref_name, " (",
                    ref.device(), "), got ", t.device());
}

[[noreturn]] inline void fail_no_cuda(const char* op) {
  TORCH_CHECK(false, op, ": got CUDA tensors but atss_core._C was built without CUDA support "
              "(rebuild with a CUDA toolkit, CUDA_HOME set, or FORCE_CUDA=1)");
}

}  // namespace atss

// Runs `expr_cuda` for CUDA tensors (when compiled in) and `expr_cpu` otherwise.
#ifdef WITH_CUDA
#define ATSS_DISPATCH_DEVICE(tensor, op, expr_cpu, expr_cuda) \
  return (tensor).is_cuda() ? (expr_cuda) : (expr_cpu)
#else
#define ATSS_DISPATCH_DEVICE(tensor, op, expr_cpu, expr_cuda) \
  if ((tensor).is_cuda()) ::atss::fail_no_cuda(op);           \
  return (expr_cpu)
#endif
