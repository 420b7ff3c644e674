// nms / ml_nms: argument checks and CPU/CUDA dispatch.
#pragma once

#include "checks.h"
#include "cpu/vision.h"
#ifdef WITH_CUDA
#include "cuda/vision.h"
#endif

namespace atss {

// The CUDA kernel launches a (words x words) grid with words = ceil(n / 64), and CUDA caps a
// grid's y dimension at 65535; its suppression mask also takes n * words * 8 bytes (n^2 / 8,
// on the GPU and again on the host: 1.25 GB at 100k boxes), so in practice memory binds
// first. Above this count the error says so instead of launching a kernel that cannot run.
constexpr int64_t kNmsCudaMaxBoxes = int64_t{65535} * 64;

// labels undefined = plain NMS; otherwise boxes only suppress boxes of their own label.
inline at::Tensor nms_dispatch(const char* op, const at::Tensor& boxes, const at::Tensor& scores,
                               const at::Tensor& labels, double threshold) {
  check_dim(boxes, op, "boxes", 2, "[N, 4] (x1, y1, x2, y2)");
  TORCH_CHECK_VALUE(boxes.size(1) == 4, op, ": boxes must have shape [N, 4], got ", boxes.sizes());
  check_floating(boxes, op, "boxes");
  check_dim(scores, op, "scores", 1, "[N]");
  check_like(scores, boxes, op, "scores", "boxes");
  TORCH_CHECK_VALUE(scores.size(0) == boxes.size(0), op, ": scores has ", scores.size(0), " entries but boxes has ",
                    boxes.size(0));
  at::Tensor labels_c;
  if (labels.defined()) {
    check_dim(labels, op, "labels", 1, "[N]");
    check_same_device(labels, boxes, op, "labels", "boxes");
    TORCH_CHECK_VALUE(labels.size(0) == boxes.size(0), op, ": labels has ", labels.size(0),
                      " entries but boxes has ", boxes.size(0));
    labels_c = labels.contiguous();
  }
  TORCH_CHECK_VALUE(!boxes.is_cuda() || boxes.size(0) <= kNmsCudaMaxBoxes, op, ": at most ", kNmsCudaMaxBoxes,
                    " boxes on CUDA (its suppression mask needs n^2 / 8 bytes), got ", boxes.size(0),
                    "; keep fewer candidates (e.g. the top ones by score) or run it on the CPU");
  at::Tensor boxes_c = boxes.contiguous(), scores_c = scores.contiguous();
  ATSS_DISPATCH_DEVICE(boxes, op, nms_cpu(boxes_c, scores_c, labels_c, threshold),
                       nms_cuda(boxes_c, scores_c, labels_c, threshold));
}

inline at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double threshold) {
  return nms_dispatch("nms", boxes, scores, at::Tensor(), threshold);
}

inline at::Tensor ml_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& labels,
                         double threshold) {
  return nms_dispatch("ml_nms", boxes, scores, labels, threshold);
}

}  // namespace atss
