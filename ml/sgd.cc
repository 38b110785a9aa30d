#include "ml/sgd.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace fedsim {

Sgd::Sgd(const SgdOptions& options, size_t num_params) : options_(options) {
  if (options_.momentum > 0.0) velocity_.assign(num_params, 0.0f);
  rule_ = SgdElementRule{.lr = static_cast<float>(options_.lr),
                         .weight_decay = static_cast<float>(options_.weight_decay),
                         .prox_mu = static_cast<float>(options_.prox_mu),
                         .momentum = static_cast<float>(options_.momentum),
                         .prox = options_.prox_mu > 0.0,
                         .velocity = velocity_.empty() ? nullptr : velocity_.data()};
}

void Sgd::Reset() { std::fill(velocity_.begin(), velocity_.end(), 0.0f); }

void Sgd::Step(std::span<float> params, std::span<const float> grad,
               std::span<const float> anchor) {
  StepRange(0, params.data(), grad.data(), anchor.data(), params.size());
}

namespace {

// Builds whose flags lack FMA (FEDSIM_NATIVE=OFF on x86-64) would turn each
// std::fma below into a libm call; an x86-64-v3 clone, picked at load time
// on CPUs that have FMA, keeps the loops vectorized. Both clones compute the
// same bits (a fused multiply-add has one correct result).
#if defined(__x86_64__) && !defined(__FMA__) && defined(__GNUC__) && !defined(__clang__)
#define FEDSIM_SGD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FEDSIM_SGD_CLONES
#endif

// The step on n elements; v is null without momentum; a is read only when
// prox.
//
// Every multiply-add is an explicit std::fma. A -march=native build
// contracts these expressions into exactly these fmas anyway (the results
// are unchanged), and written out they no longer depend on the compiler's
// contraction choices or the instruction set: the reproducible numeric mode
// (ml/numeric.h) shares this code with the native one.
FEDSIM_SGD_CLONES void StepKernel(float lr, float wd, float mu, float m, bool prox,
                                  float* __restrict w, const float* __restrict g,
                                  const float* __restrict a, float* __restrict v, size_t n) {
  // Separate loops keep the common cases free of branches and dead terms, so
  // they vectorize; each keeps the same per-element formula.
  if (v == nullptr) {
    if (!prox && wd == 0.0f) {
      for (size_t i = 0; i < n; ++i) w[i] = std::fma(-lr, g[i], w[i]);
    } else if (!prox) {
      for (size_t i = 0; i < n; ++i) w[i] = std::fma(-lr, std::fma(wd, w[i], g[i]), w[i]);
    } else {
      for (size_t i = 0; i < n; ++i) {
        const float gi = std::fma(mu, w[i] - a[i], std::fma(wd, w[i], g[i]));
        w[i] = std::fma(-lr, gi, w[i]);
      }
    }
    return;
  }
  // A velocity whose gradient stays zero (a dead ReLU unit) decays into the
  // subnormal range and then sticks at the smallest subnormal (0.9 * 1 ulp
  // rounds back to 1 ulp); arithmetic on subnormals takes a microcode assist
  // of ~100 cycles on x86. Flushing subnormal velocities to zero keeps the
  // step at memory speed (measured 20x slower otherwise) and changes nothing
  // of any size: the weight moves by lr * |v| < lr * FLT_MIN either way.
  constexpr float kTiny = std::numeric_limits<float>::min();
  if (!prox && wd == 0.0f) {
    // fma(0, w, g) differs from g at most in the sign of a zero, so m * v + g
    // differs from m * v + fma(0, w, g) at most in the sign of a zero
    // result, which the flush below turns into +0 either way: these bits are
    // the general formula's, one multiply-add cheaper.
    for (size_t i = 0; i < n; ++i) {
      const float vi = std::fma(m, v[i], g[i]);
      const float vf = std::fabs(vi) < kTiny ? 0.0f : vi;
      v[i] = vf;
      w[i] = std::fma(-lr, vf, w[i]);
    }
  } else if (!prox) {
    for (size_t i = 0; i < n; ++i) {
      const float vi = std::fma(m, v[i], std::fma(wd, w[i], g[i]));
      const float vf = std::fabs(vi) < kTiny ? 0.0f : vi;
      v[i] = vf;
      w[i] = std::fma(-lr, vf, w[i]);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      const float gi = std::fma(mu, w[i] - a[i], std::fma(wd, w[i], g[i]));
      const float vi = std::fma(m, v[i], gi);
      const float vf = std::fabs(vi) < kTiny ? 0.0f : vi;
      v[i] = vf;
      w[i] = std::fma(-lr, vf, w[i]);
    }
  }
}

}  // namespace

void Sgd::StepRange(size_t offset, float* params, const float* grad, const float* anchor,
                    size_t count) {
  const SgdElementRule& r = rule_;
  StepKernel(r.lr, r.weight_decay, r.prox_mu, r.momentum, r.prox, params, grad,
             r.prox ? anchor : nullptr, r.velocity != nullptr ? r.velocity + offset : nullptr,
             count);
}

}  // namespace fedsim
