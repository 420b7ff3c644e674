// ROIPool on the CPU: forward over rois in parallel; backward
// over channels in parallel so each thread owns the planes it writes.
#include <ATen/Parallel.h>

#include <vector>

#include "cpu/vision.h"
#include "kernels/roi_pool_kernel.h"

namespace atss {

std::tuple<at::Tensor, at::Tensor> roi_pool_forward_cpu(const at::Tensor& input, const at::Tensor& rois,
                                                        double spatial_scale, int64_t pooled_h, int64_t pooled_w) {
  const int64_t num_rois = rois.size(0), channels = input.size(1);
  const int height = input.size(2), width = input.size(3);
  at::Tensor output = at::zeros({num_rois, channels, pooled_h, pooled_w}, input.options());
  at::Tensor argmax = at::full({num_rois, channels, pooled_h, pooled_w}, -1, input.options().dtype(at::kInt));
  if (output.numel() == 0) return std::make_tuple(output, argmax);
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "roi_pool_forward_cpu", [&] {
    const scalar_t* in = input.data_ptr<scalar_t>();
    const scalar_t* roi_ptr = rois.data_ptr<scalar_t>();
    scalar_t* out = output.data_ptr<scalar_t>();
    int* arg = argmax.data_ptr<int>();
    const int64_t plane = static_cast<int64_t>(height) * width;
    const int bins = pooled_h * pooled_w;
    // rois in parallel; a roi's bin windows are computed once for all channels
    at::parallel_for(0, num_rois, 1, [&](int64_t begin, int64_t end) {
      std::vector<PoolWindow> windows(bins);
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* roi = roi_ptr + 5 * r;
        for (int ph = 0; ph < pooled_h; ++ph)
          for (int pw = 0; pw < pooled_w; ++pw)
            windows[ph * pooled_w + pw] = roi_pool_window(roi, static_cast<scalar_t>(spatial_scale), height, width,
                                                          pooled_h, pooled_w, ph, pw);
        const scalar_t* image = in + static_cast<int64_t>(roi[0]) * channels * plane;
        for (int64_t c = 0; c < channels; ++c) {
          const int64_t o = (r * channels + c) * bins;
          for (int b = 0; b < bins; ++b) out[o + b] = roi_pool_max(image + c * plane, width, windows[b], arg + o + b);
        }
      }
    });
  });
  return std::make_tuple(output, argmax);
}

at::Tensor roi_pool_backward_cpu(const at::Tensor& grad, const at::Tensor& argmax, const at::Tensor& rois,
                                 int64_t batch, int64_t channels, int64_t height, int64_t width) {
  at::Tensor grad_input = at::zeros({batch, channels, height, width}, grad.options());
  if (grad.numel() == 0) return grad_input;
  const int64_t num_rois = rois.size(0);
  const int64_t bins = grad.size(2) * grad.size(3);
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "roi_pool_backward_cpu", [&] {
    const scalar_t* g = grad.data_ptr<scalar_t>();
    const scalar_t* roi_ptr = rois.data_ptr<scalar_t>();
    const int* arg = argmax.data_ptr<int>();
    scalar_t* gi = grad_input.data_ptr<scalar_t>();
    at::parallel_for(0, channels, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = 0; r < num_rois; ++r) {
        const int64_t b = static_cast<int64_t>(roi_ptr[5 * r]);
        for (int64_t c = begin; c < end; ++c) {
          scalar_t* gplane = gi + (b * channels + c) * height * width;
          const int64_t base = (r * channels + c) * bins;
          for (int64_t k = 0; k < bins; ++k)
            if (arg[base + k] >= 0) gplane[arg[base + k]] += g[base + k];
        }
      }
    });
  });
  return grad_input;
}

}  // namespace atss
