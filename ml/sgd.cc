#include "ml/sgd.h"

#include <algorithm>

namespace fedsim {

Sgd::Sgd(const SgdOptions& options, size_t num_params) : options_(options) {
  if (options_.momentum > 0.0) velocity_.assign(num_params, 0.0f);
}

void Sgd::Reset() { std::fill(velocity_.begin(), velocity_.end(), 0.0f); }

void Sgd::Step(std::span<float> params, std::span<const float> grad,
               std::span<const float> anchor) {
  const size_t n = params.size();
  float* __restrict w = params.data();
  const float* __restrict g = grad.data();
  const float lr = static_cast<float>(options_.lr);
  const float wd = static_cast<float>(options_.weight_decay);
  const float mu = static_cast<float>(options_.prox_mu);
  const float m = static_cast<float>(options_.momentum);
  const bool prox = options_.prox_mu > 0.0;
  const float* __restrict a = prox ? anchor.data() : nullptr;
  // Separate loops keep the common cases free of branches and dead terms, so
  // they vectorize; each keeps the same per-element formula.
  if (velocity_.empty()) {
    if (!prox && wd == 0.0f) {
      for (size_t i = 0; i < n; ++i) w[i] -= lr * g[i];
    } else if (!prox) {
      for (size_t i = 0; i < n; ++i) w[i] -= lr * (g[i] + wd * w[i]);
    } else {
      for (size_t i = 0; i < n; ++i) w[i] -= lr * (g[i] + wd * w[i] + mu * (w[i] - a[i]));
    }
    return;
  }
  float* __restrict v = velocity_.data();
  if (!prox) {
    for (size_t i = 0; i < n; ++i) {
      v[i] = m * v[i] + (g[i] + wd * w[i]);
      w[i] -= lr * v[i];
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      v[i] = m * v[i] + (g[i] + wd * w[i] + mu * (w[i] - a[i]));
      w[i] -= lr * v[i];
    }
  }
}

}  // namespace fedsim
