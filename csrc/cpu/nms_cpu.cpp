// Greedy NMS on the CPU. Candidates are visited in descending score order and
// the survivors are compacted after each kept box, so later passes only touch
// boxes that are still alive (torchvision rescans the whole suppressed mask).
#include <numeric>
#include <vector>

#include "cpu/vision.h"
#include "kernels/nms_kernel.h"

namespace atss {

template <typename T>
static at::Tensor nms_cpu_impl(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& labels,
                               double threshold) {
  const int64_t n = boxes.size(0);
  at::Tensor order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  // boxes, areas and labels gathered in visiting order for linear memory access
  at::Tensor sorted_boxes = boxes.index_select(0, order).contiguous();
  const T* box = sorted_boxes.data_ptr<T>();
  const int64_t* order_ptr = order.data_ptr<int64_t>();
  std::vector<T> area(n);
  for (int64_t i = 0; i < n; ++i) area[i] = legacy_box_area(box + 4 * i);
  std::vector<int64_t> label;
  if (labels.defined()) {
    at::Tensor sorted_labels = labels.index_select(0, order).to(at::kLong).contiguous();
    label.assign(sorted_labels.data_ptr<int64_t>(), sorted_labels.data_ptr<int64_t>() + n);
  }
  const T thresh = static_cast<T>(threshold);

  std::vector<int64_t> alive(n);
  std::iota(alive.begin(), alive.end(), 0);
  std::vector<int64_t> keep;
  int64_t num_alive = n;
  while (num_alive > 0) {
    const int64_t i = alive[0];
    keep.push_back(order_ptr[i]);
    const T* bi = box + 4 * i;
    int64_t write = 0;
    for (int64_t r = 1; r < num_alive; ++r) {
      const int64_t j = alive[r];
      if (!label.empty() && label[j] != label[i]) {
        alive[write++] = j;
        continue;
      }
      if (!(legacy_iou(bi, area[i], box + 4 * j, area[j]) > thresh)) alive[write++] = j;
    }
    num_alive = write;
  }
  return at::from_blob(keep.data(), {static_cast<int64_t>(keep.size())}, at::kLong).clone();
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
