// Legacy ROIAlign on the CPU. Forward: rois in parallel, the bilinear taps of a
// roi computed once and reused for every channel. Backward: channels in
// parallel, so each thread owns the gradient planes it writes (no atomics).
#include <ATen/Parallel.h>

#include <vector>

#include "cpu/vision.h"
#include "kernels/roi_align_kernel.h"

namespace atss {

template <typename T>
static void roi_align_forward_impl(const at::Tensor& input, const at::Tensor& rois, T spatial_scale, int pooled_h,
                                   int pooled_w, int sampling_ratio, at::Tensor& output) {
  const int channels = input.size(1), height = input.size(2), width = input.size(3);
  const T* in = input.data_ptr<T>();
  const T* roi_ptr = rois.data_ptr<T>();
  T* out = output.data_ptr<T>();
  const int64_t plane = static_cast<int64_t>(height) * width;
  const int bins = pooled_h * pooled_w;
  at::parallel_for(0, rois.size(0), 1, [&](int64_t begin, int64_t end) {
    std::vector<BilinearTaps<T>> taps;
    for (int64_t r = begin; r < end; ++r) {
      RoiBinGeometry<T> g = roi_align_geometry(roi_ptr + 5 * r, spatial_scale, pooled_h, pooled_w, sampling_ratio);
      const int samples = g.grid_h * g.grid_w;
      taps.resize(static_cast<size_t>(bins) * samples);
      for (int ph = 0; ph < pooled_h; ++ph)
        for (int pw = 0; pw < pooled_w; ++pw)
          for (int iy = 0; iy < g.grid_h; ++iy)
            for (int ix = 0; ix < g.grid_w; ++ix) {
              T y, x;
              roi_align_sample_point(g, ph, pw, iy, ix, &y, &x);
              taps[(ph * pooled_w + pw) * samples + iy * g.grid_w + ix] = roi_align_taps(height, width, y, x);
            }
      const T inv_count = static_cast<T>(1) / static_cast<T>(max_of(samples, 1));
      for (int c = 0; c < channels; ++c) {
        const T* p = in + (static_cast<int64_t>(g.batch_index) * channels + c) * plane;
        T* o = out + (r * channels + c) * bins;
        for (int b = 0; b < bins; ++b) {
          RoiAlignGather<T> gather{p, width, static_cast<T>(0)};
          const BilinearTaps<T>* t = taps.data() + static_cast<size_t>(b) * samples;
          for (int s = 0; s < samples; ++s, ++t)
            if (t->valid) gather(*t);
          o[b] = gather.sum * inv_count;
        }
      }
    }
  });
}

at::Tensor roi_align_forward_cpu(const at::Tensor& input, const at::Tensor& rois, double spatial_scale,
                                 int64_t pooled_h, int64_t pooled_w, int64_t sampling_ratio) {
  at::Tensor output = at::zeros({rois.size(0), input.size(1), pooled_h, pooled_w}, input.options());
  if (output.numel() == 0) return output;
  AT_DISPATCH_FLOATING_TYPES(input.scalar_type(), "roi_align_forward_cpu", [&] {
    roi_align_forward_impl<scalar_t>(input, rois, static_cast<scalar_t>(spatial_scale), pooled_h, pooled_w,
                                     sampling_ratio, output);
  });
  return output;
}

at::Tensor roi_align_backward_cpu(const at::Tensor& grad, const at::Tensor& rois, double spatial_scale,
                                  int64_t pooled_h, int64_t pooled_w, int64_t batch, int64_t channels,
                                  int64_t height, int64_t width, int64_t sampling_ratio) {
  at::Tensor grad_input = at::zeros({batch, channels, height, width}, grad.options());
  if (grad.numel() == 0) return grad_input;
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "roi_align_backward_cpu", [&] {
    const scalar_t* g = grad.data_ptr<scalar_t>();
    const scalar_t* roi_ptr = rois.data_ptr<scalar_t>();
    scalar_t* gi = grad_input.data_ptr<scalar_t>();
    const int64_t num_rois = rois.size(0);
    const int64_t plane = height * width;
    auto add = [](scalar_t* dst, scalar_t v) { *dst += v; };
    at::parallel_for(0, channels, 1, [&](int64_t begin, int64_t end) {
      for (int64_t r = 0; r < num_rois; ++r) {
        RoiBinGeometry<scalar_t> geo = roi_align_geometry(roi_ptr + 5 * r, static_cast<scalar_t>(spatial_scale),
                                                          pooled_h, pooled_w, sampling_ratio);
        for (int64_t c = begin; c < end; ++c) {
          scalar_t* gplane = gi + (geo.batch_index * channels + c) * plane;
          const scalar_t* gout = g + (r * channels + c) * pooled_h * pooled_w;
          for (int ph = 0; ph < pooled_h; ++ph)
            for (int pw = 0; pw < pooled_w; ++pw)
              roi_align_bin_backward(gout[ph * pooled_w + pw], gplane, height, width, geo, ph, pw, add);
        }
      }
    });
  });
  return grad_input;
}

}  // namespace atss
