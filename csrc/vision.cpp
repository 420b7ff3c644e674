// Python bindings of atss_core._C. Registration only: the ops live in the
// headers (checks + dispatch) and in cpu/ and cuda/.
#include "ROIAlign.h"
#include "SigmoidFocalLoss.h"
#include "deform_conv.h"
#include "nms.h"

namespace atss {
bool built_with_cuda() {
#ifdef WITH_CUDA
  return true;
#else
  return false;
#endif
}
}  // namespace atss

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using namespace atss;
  m.def("nms", &nms, "greedy NMS with the legacy +1 box convention; kept indices by descending score",
        py::arg("boxes"), py::arg("scores"), py::arg("nms_thresh"));
  m.def("ml_nms", &ml_nms, "NMS that only suppresses boxes of the same label", py::arg("boxes"), py::arg("scores"),
        py::arg("labels"), py::arg("nms_thresh"));
  m.def("roi_align_forward", &ROIAlign_forward, "ROIAlign forward (aligned=False)");
  m.def("roi_align_backward", &ROIAlign_backward, "ROIAlign backward");
  m.def("roi_pool_forward", &ROIPool_forward, "ROIPool forward; returns (output, argmax)");
  m.def("roi_pool_backward", &ROIPool_backward, "ROIPool backward");
  m.def("sigmoid_focal_loss_forward", &sigmoid_focal_loss_forward,
        "sigmoid focal loss (per element or summed) and, optionally, its gradient in the same pass");
  m.def("deform_conv_forward", &deform_conv_forward, "deformable convolution v1 (mask=None) / v2 forward");
  m.def("deform_conv_backward", &deform_conv_backward, "deformable convolution v1 / v2 backward");
  m.def("built_with_cuda", &built_with_cuda, "whether the CUDA kernels were compiled in");
  m.attr("NMS_CUDA_MAX_BOXES") = kNmsCudaMaxBoxes;
}
