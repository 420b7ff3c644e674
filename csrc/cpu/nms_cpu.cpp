// Greedy NMS on the CPU. Candidates are visited in descending score order and
// the survivors are compacted after each kept box, so later passes only touch
// boxes that are still alive (torchvision rescans the whole suppressed mask).
#include <algorithm>
#include <numeric>
#include <vector>

#include "cpu/vision.h"
#include "kernels/nms_kernel.h"

namespace atss {

// Greedy suppression over `candidates` (positions in score order, ascending);
// appends the kept positions to `keep`. The candidate list is compacted in place.
template <typename T>
static void greedy_nms(const T* box, const std::vector<T>& area, std::vector<int64_t>& candidates, T thresh,
                       std::vector<int64_t>& keep) {
  int64_t num_alive = static_cast<int64_t>(candidates.size());
  while (num_alive > 0) {
    const int64_t i = candidates[0];
    keep.push_back(i);
    const T* bi = box + 4 * i;
    int64_t write = 0;
    for (int64_t r = 1; r < num_alive; ++r) {
      const int64_t j = candidates[r];
      if (!(legacy_iou(bi, area[i], box + 4 * j, area[j]) > thresh)) candidates[write++] = j;
    }
    num_alive = write;
  }
}

template <typename T>
static at::Tensor nms_cpu_impl(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& labels,
                               double threshold) {
  const int64_t n = boxes.size(0);
  at::Tensor order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  // boxes and areas gathered in score order for linear memory access
  at::Tensor sorted_boxes = boxes.index_select(0, order).contiguous();
  const T* box = sorted_boxes.data_ptr<T>();
  std::vector<T> area(n);
  for (int64_t i = 0; i < n; ++i) area[i] = legacy_box_area(box + 4 * i);
  const T thresh = static_cast<T>(threshold);

  std::vector<int64_t> keep;
  if (!labels.defined()) {
    std::vector<int64_t> candidates(n);
    std::iota(candidates.begin(), candidates.end(), 0);
    greedy_nms(box, area, candidates, thresh, keep);
  } else {
    // labels never suppress each other: one independent greedy pass per label,
    // O(sum n_label^2) instead of O(n^2); kept positions merged back in score order
    at::Tensor sorted_labels = labels.index_select(0, order).to(at::kLong).contiguous();
    const int64_t* label = sorted_labels.data_ptr<int64_t>();
    std::vector<int64_t> by_label(n);
    std::iota(by_label.begin(), by_label.end(), 0);
    std::stable_sort(by_label.begin(), by_label.end(), [&](int64_t a, int64_t b) { return label[a] < label[b]; });
    std::vector<int64_t> candidates;
    for (int64_t start = 0; start < n;) {
      int64_t stop = start;
      while (stop < n && label[by_label[stop]] == label[by_label[start]]) ++stop;
      candidates.assign(by_label.begin() + start, by_label.begin() + stop);
      greedy_nms(box, area, candidates, thresh, keep);
      start = stop;
    }
    std::sort(keep.begin(), keep.end());
  }
  at::Tensor positions = at::from_blob(keep.data(), {static_cast<int64_t>(keep.size())}, at::kLong);
  return order.index_select(0, positions);
}

at::Tensor nms_cpu(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& labels, double threshold) {
  if (boxes.size(0) == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  at::Tensor result;
  AT_DISPATCH_FLOATING_TYPES(boxes.scalar_type(), "nms_cpu", [&] {
    result = nms_cpu_impl<scalar_t>(boxes, scores, labels, threshold);
  });
  return result;
}

}  // namespace atss
