// Sigmoid focal loss of one logit (Lin et al., 2017) and its derivative.
// Targets are integer labels: 0 = background, k in 1..C = class k, and < 0 = ignore.
#pragma once

#include "kernels/common.h"

namespace atss {

template <typename T>
ATSS_HD T focal_pow(T base, T gamma) {
  // gamma == 2 is the universal setting; avoid pow() there
  return gamma == static_cast<T>(2) ? base * base : pow(base, gamma);
}

// loss and d(loss)/d(logit) of logit x for class `cls` (1-based) given label `target`.
template <typename T>
ATSS_HD void focal_loss_element(T x, int64_t target, int64_t cls, T gamma, T alpha, T* loss, T* grad) {
  if (target < 0) {
    *loss = 0;
    *grad = 0;
    return;
  }
  // numerically stable log(p) and log(1 - p) with p = sigmoid(x)
  T softplus_neg_abs = log1p(exp(-fabs(x)));
  T log_p = -softplus_neg_abs - max_of(-x, static_cast<T>(0));
  T log_1mp = -softplus_neg_abs - max_of(x, static_cast<T>(0));
  T p = exp(log_p);
  T q = 1 - p;
  if (target == cls) {
    T mod = focal_pow(q, gamma);
    *loss = -alpha * mod * log_p;
    *grad = alpha * mod * (gamma * p * log_p - q);
  } else {
    T mod = focal_pow(p, gamma);
    *loss = -(1 - alpha) * mod * log_1mp;
    *grad = (1 - alpha) * mod * (p - gamma * q * log_1mp);
  }
}

}  // namespace atss
