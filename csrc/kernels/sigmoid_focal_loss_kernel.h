// Sigmoid focal loss of one logit (Lin et al., 2017) and its derivative.
// Targets are integer labels: 0 = background, k in 1..C = class k, and < 0 = ignore.
#pragma once

#include "kernels/common.h"
#include "kernels/fast_math.h"

namespace atss {

// (1 - p_t)^gamma; kSquare selects the universal gamma == 2 at compile time so
// that the CPU loop has no pow() call and vectorises.
template <typename T, bool kSquare>
ATSS_HD T focal_modulator(T base, T gamma) {
  return kSquare ? base * base : pow(base, gamma);
}

template <typename T>
struct FocalTerm {
  T loss, grad;
};

// loss and d(loss)/d(logit) of logit x for class `cls` (1-based) given label `target`.
// Branch-free (selects only) and int32 labels (SSE2 has no 64-bit compares) so
// that the CPU loop vectorises; two transcendentals
// per logit: e = exp(-|x|) gives p, 1 - p, log p and log(1 - p) stably.
template <typename T, bool kSquare>
ATSS_HD FocalTerm<T> focal_loss_element(T x, int target, int cls, T gamma, T alpha) {
  const T e = fast_exp(-fabs(x));
  const T softplus = fast_log(static_cast<T>(1) + e);  // log(1 + exp(-|x|))
  const T inv = static_cast<T>(1) / (static_cast<T>(1) + e);
  const bool nonneg = x >= 0;
  const T p = nonneg ? inv : e * inv;
  const T q = nonneg ? e * inv : inv;  // 1 - p without cancellation
  const bool positive = target == cls;
  // positive: loss = -alpha q^g log p        grad = alpha q^g (g p log p - q)
  // negative: loss = -(1-alpha) p^g log q    grad = (1-alpha) p^g (p - g q log q)
  const T base = positive ? q : p;
  const T other = positive ? p : q;
  const T log_prob = -softplus - (positive ? (nonneg ? static_cast<T>(0) : -x) : (nonneg ? x : static_cast<T>(0)));
  const T weight = target < 0 ? static_cast<T>(0) : (positive ? alpha : static_cast<T>(1) - alpha);
  const T scaled = weight * focal_modulator<T, kSquare>(base, gamma);
  FocalTerm<T> term;
  term.loss = -scaled * log_prob;
  term.grad = (positive ? scaled : -scaled) * (gamma * other * log_prob - base);
  return term;
}

}  // namespace atss
