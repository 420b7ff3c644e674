// Greedy NMS on the GPU: a kernel fills, for every box, a bitmask of the
// lower-scored boxes it suppresses (64 per word); the host then walks the boxes
// once in score order and keeps those not yet suppressed.
#include <vector>

#include "cuda/cuda_utils.cuh"
#include "cuda/vision.h"
#include "kernels/nms_kernel.h"

namespace atss {

namespace {

constexpr int kBitsPerWord = 64;

template <typename T>
__global__ void nms_mask_kernel(int n, T threshold, const T* boxes, const int64_t* labels, int words_per_row,
                                unsigned long long* mask) {
  const int row_block = blockIdx.y, col_block = blockIdx.x;
  if (row_block > col_block) return;  // only boxes later in score order can be suppressed
  const int row_size = min(n - row_block * kBitsPerWord, kBitsPerWord);
  const int col_size = min(n - col_block * kBitsPerWord, kBitsPerWord);
  __shared__ T col_boxes[kBitsPerWord * 4];
  __shared__ int64_t col_labels[kBitsPerWord];
  if (threadIdx.x < col_size) {
    const int j = col_block * kBitsPerWord + threadIdx.x;
    for (int d = 0; d < 4; ++d) col_boxes[threadIdx.x * 4 + d] = boxes[j * 4 + d];
    col_labels[threadIdx.x] = labels ? labels[j] : 0;
  }
  __syncthreads();
  if (threadIdx.x >= row_size) return;
  const int i = row_block * kBitsPerWord + threadIdx.x;
  const T* box_i = boxes + i * 4;
  const T area_i = legacy_box_area(box_i);
  const int64_t label_i = labels ? labels[i] : 0;
  unsigned long long bits = 0;
  for (int k = (row_block == col_block) ? threadIdx.x + 1 : 0; k < col_size; ++k) {
    if (col_labels[k] != label_i) continue;
    const T* box_k = col_boxes + k * 4;
    if (legacy_iou(box_i, area_i, box_k, legacy_box_area(box_k)) > threshold) bits |= 1ULL << k;
  }
  mask[static_cast<int64_t>(i) * words_per_row + col_block] = bits;
}

}  // namespace

at::Tensor nms_cuda(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& labels, double threshold) {
  at::cuda::CUDAGuard guard(boxes.device());
  const int64_t n = boxes.size(0);
  if (n == 0) return at::empty({0}, boxes.options().dtype(at::kLong));
  // n <= kNmsCudaMaxBoxes (nms.h): the grid fits and every index below fits in an int
  at::Tensor order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true));
  at::Tensor sorted_boxes = boxes.index_select(0, order).contiguous();
  at::Tensor sorted_labels = labels.defined() ? labels.index_select(0, order).to(at::kLong).contiguous() : at::Tensor();
  const int words = static_cast<int>((n + kBitsPerWord - 1) / kBitsPerWord);
  at::Tensor mask = at::empty({n * words}, boxes.options().dtype(at::kLong));
  const dim3 grid(words, words);
  cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(boxes.scalar_type(), "nms_cuda", [&] {
    nms_mask_kernel<scalar_t><<<grid, kBitsPerWord, 0, stream>>>(
        static_cast<int>(n), static_cast<scalar_t>(threshold), sorted_boxes.data_ptr<scalar_t>(),
        sorted_labels.defined() ? sorted_labels.data_ptr<int64_t>() : nullptr, words,
        reinterpret_cast<unsigned long long*>(mask.data_ptr<int64_t>()));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();

  at::Tensor mask_host = mask.cpu();
  const unsigned long long* m = reinterpret_cast<const unsigned long long*>(mask_host.data_ptr<int64_t>());
  std::vector<unsigned long long> removed(words, 0);
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < n; ++i) {
    const int w = static_cast<int>(i / kBitsPerWord);
    if (removed[w] & (1ULL << (i % kBitsPerWord))) continue;
    keep.push_back(i);
    const unsigned long long* row = m + i * words;
    for (int j = w; j < words; ++j) removed[j] |= row[j];
  }
  at::Tensor keep_host = at::from_blob(keep.data(), {static_cast<int64_t>(keep.size())}, at::kLong);
  return order.index_select(0, keep_host.to(order.device()));
}

}  // namespace atss
