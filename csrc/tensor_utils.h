// Small at::Tensor helpers shared by the CPU and CUDA host code.
#pragma once

#include <torch/extension.h>

namespace atss {

// Data pointer of an optional tensor (undefined -> nullptr), e.g. the DCNv1 "no mask".
template <typename T>
T* optional_data(const at::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

}  // namespace atss
