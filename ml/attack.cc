#include "ml/attack.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"

namespace fedsim {
namespace {

const char* NormName(AttackNorm norm) { return norm == AttackNorm::kLinf ? "linf" : "l2"; }

// The widened valid range of one coordinate whose clean value is v: a clean
// value outside [lo, hi] stays reachable (see the header).
inline float RangeLo(float lo, float v) { return std::min(lo, v); }
inline float RangeHi(float hi, float v) { return std::max(hi, v); }

// The next float above f (f finite; both zeros step to the smallest
// subnormal), and the next below. Branch-free, so that the bounds loop
// vectorizes.
inline float NextUp(float f) {
  // Positive floats grow with their bit pattern, negative ones shrink
  // (unsigned arithmetic: -0's pattern minus one is computed, not selected).
  const uint32_t b = std::bit_cast<uint32_t>(f);
  const float up = std::bit_cast<float>((b >> 31) == 0 ? b + 1 : b - 1);
  return f == 0.0f ? std::numeric_limits<float>::denorm_min() : up;
}
inline float NextDown(float f) { return -NextUp(-f); }

class AttackImpl final : public Attack {
 public:
  explicit AttackImpl(const AttackOptions& options) : options_(options) {}

  const AttackOptions& options() const override { return options_; }

  void Perturb(Model& model, std::span<const float> params, const BatchView& batch, Rng& rng,
               std::span<float> x_adv) override {
    Run(model, params, batch, nullptr, rng, x_adv);
  }

  void PerturbLoss(Model& model, std::span<const float> params, const BatchView& batch,
                   LogitLoss& loss, Rng& rng, std::span<float> x_adv) override {
    Run(model, params, batch, &loss, rng, x_adv);
  }

 private:
  // The attack; ascends the cross-entropy when loss is null.
  void Run(Model& model, std::span<const float> params, const BatchView& batch, LogitLoss* loss,
           Rng& rng, std::span<float> x_adv) {
    const size_t dim = static_cast<size_t>(model.config().input_dim());
    const size_t total = static_cast<size_t>(batch.n) * dim;
    if (dx_.size() < total) dx_.resize(total);
    const float* x = batch.x;
    float* xa = x_adv.data();

    if (options_.norm == AttackNorm::kLinf) LinfBounds(x, total);
    if (options_.random_start) {
      RandomStart(x, batch.n, dim, rng, xa);
    } else {
      std::copy(x, x + total, xa);
    }
    const BatchView adv{xa, batch.y, batch.n};
    const std::span<float> dx(dx_.data(), total);
    for (int step = 0; step < options_.steps; ++step) {
      // No parameter gradient: only d loss / d x is computed.
      if (loss == nullptr) {
        model.ForwardBackward(params, adv, {}, dx);
      } else {
        model.ForwardBackwardLoss(params, adv, *loss, {}, dx);
      }
      if (options_.norm == AttackNorm::kLinf) {
        StepLinf(dx_.data(), total, xa);
      } else {
        StepL2(x, dx_.data(), batch.n, dim, xa);
      }
    }
  }

  void RandomStart(const float* x, int n, size_t dim, Rng& rng, float* xa) {
    const double eps = options_.eps;
    const size_t total = static_cast<size_t>(n) * dim;
    if (options_.norm == AttackNorm::kLinf) {
      for (size_t i = 0; i < total; ++i) {
        xa[i] = x[i] + static_cast<float>(rng.Uniform(-eps, eps));
      }
      // Rounding of x + d may overshoot the ball by an ulp: project.
      ProjectLinf(total, xa);
      return;
    }
    // Uniform in the L2 ball of dimension dim: a uniform direction (a
    // normalized Gaussian vector) times eps * U^(1/dim).
    dir_.resize(dim);
    for (int r = 0; r < n; ++r) {
      double sq = 0.0;
      for (size_t j = 0; j < dim; ++j) {
        dir_[j] = rng.Normal();
        sq += dir_[j] * dir_[j];
      }
      const double radius = eps * std::pow(rng.Uniform(), 1.0 / static_cast<double>(dim));
      const double scale = sq > 0.0 ? radius / std::sqrt(sq) : 0.0;
      const float* xr = x + static_cast<size_t>(r) * dim;
      float* ar = xa + static_cast<size_t>(r) * dim;
      for (size_t j = 0; j < dim; ++j) {
        ar[j] = xr[j] + static_cast<float>(dir_[j] * scale);
      }
      ProjectL2Row(xr, dim, ar);
    }
  }

  // The L-infinity feasible set of each coordinate: [x - eps, x + eps]
  // intersected with the (widened) valid range, into lo_ and hi_. The ball's
  // bounds are rounded towards x, so that |xa - x| <= eps holds exactly, not
  // only up to float rounding. Once per Perturb: the steps then only clamp.
  void LinfBounds(const float* x, size_t total) {
    if (lo_.size() < total) {
      lo_.resize(total);
      hi_.resize(total);
    }
    const float lo = options_.clip_min, hi = options_.clip_max;
    const double eps = options_.eps;
    for (size_t i = 0; i < total; ++i) {
      const float v = x[i];
      float below = static_cast<float>(v - eps);
      float above = static_cast<float>(v + eps);
      // Selects rather than branches: about half the coordinates need the
      // correction, unpredictably.
      below = static_cast<double>(v) - below > eps ? NextUp(below) : below;
      above = above - static_cast<double>(v) > eps ? NextDown(above) : above;
      lo_[i] = std::max(below, RangeLo(lo, v));
      hi_[i] = std::min(above, RangeHi(hi, v));
    }
  }

  // xa = P(xa + a * sign(g)).
  void StepLinf(const float* __restrict g, size_t total, float* __restrict xa) const {
    const float a = static_cast<float>(options_.step_size);
    const float* __restrict lo = lo_.data();
    const float* __restrict hi = hi_.data();
    for (size_t i = 0; i < total; ++i) {
      const float s = static_cast<float>((g[i] > 0.0f) - (g[i] < 0.0f));
      xa[i] = std::min(std::max(xa[i] + a * s, lo[i]), hi[i]);
    }
  }

  // Clamps xa into the bounds LinfBounds computed.
  void ProjectLinf(size_t total, float* __restrict xa) const {
    const float* __restrict lo = lo_.data();
    const float* __restrict hi = hi_.data();
    for (size_t i = 0; i < total; ++i) xa[i] = std::min(std::max(xa[i], lo[i]), hi[i]);
  }

  // xa = P(xa + a * g / ||g||_2), per row.
  void StepL2(const float* x, const float* g, int n, size_t dim, float* xa) const {
    const double a = options_.step_size;
    for (int r = 0; r < n; ++r) {
      const float* gr = g + static_cast<size_t>(r) * dim;
      float* ar = xa + static_cast<size_t>(r) * dim;
      double sq = 0.0;
      for (size_t j = 0; j < dim; ++j) sq += static_cast<double>(gr[j]) * gr[j];
      if (sq > 0.0) {
        const float scale = static_cast<float>(a / std::sqrt(sq));
        for (size_t j = 0; j < dim; ++j) ar[j] += scale * gr[j];
      }
      ProjectL2Row(x + static_cast<size_t>(r) * dim, dim, ar);
    }
  }

  // Scales xa - x down to norm eps when it is longer, then clamps into the
  // (widened) valid range, which only shortens it.
  void ProjectL2Row(const float* x, size_t dim, float* xa) const {
    const float lo = options_.clip_min, hi = options_.clip_max;
    const double eps = options_.eps;
    double sq = 0.0;
    for (size_t j = 0; j < dim; ++j) {
      const double d = static_cast<double>(xa[j]) - x[j];
      sq += d * d;
    }
    if (sq > eps * eps) {
      // (Float rounding of x + d may leave the norm an ulp or so off eps.)
      const double scale = eps / std::sqrt(sq);
      for (size_t j = 0; j < dim; ++j) {
        const double d = (static_cast<double>(xa[j]) - x[j]) * scale;
        xa[j] = x[j] + static_cast<float>(d);
      }
    }
    for (size_t j = 0; j < dim; ++j) {
      xa[j] = std::clamp(xa[j], RangeLo(lo, x[j]), RangeHi(hi, x[j]));
    }
  }

  const AttackOptions options_;
  std::vector<float> dx_;    // d loss / d x at the current point
  std::vector<double> dir_;  // L2 random start direction
  std::vector<float> lo_;    // L-infinity bounds of each coordinate
  std::vector<float> hi_;
};

}  // namespace

AttackOptions Fgsm(AttackNorm norm, double eps, float clip_min, float clip_max) {
  return AttackOptions{.kind = AttackKind::kFgsm,
                       .norm = norm,
                       .eps = eps,
                       .step_size = eps,
                       .steps = 1,
                       .random_start = false,
                       .clip_min = clip_min,
                       .clip_max = clip_max};
}

std::string AttackName(const AttackOptions& o) {
  return absl::StrCat(o.kind == AttackKind::kFgsm ? "fgsm(" : "pgd(", NormName(o.norm),
                      ", eps=", o.eps, ", step=", o.step_size,
                      o.kind == AttackKind::kFgsm ? "" : absl::StrCat(", k=", o.steps),
                      ", start=", o.random_start ? "random" : "clean",
                      (o.clip_min == 0.0f && o.clip_max == 1.0f)
                          ? ""
                          : absl::StrCat(", range=[", o.clip_min, ", ", o.clip_max, "]"),
                      ")");
}

absl::Status ValidateAttackOptions(const AttackOptions& o) {
  if (!(o.eps >= 0) || !std::isfinite(o.eps)) {
    return absl::InvalidArgumentError(
        absl::StrCat("attack: eps must be finite and >= 0, got ", o.eps));
  }
  // A zero step is allowed only with a zero ball (FGSM of eps 0), where
  // nothing can move anyway.
  if (!(o.step_size > 0 || (o.step_size == 0 && o.eps == 0)) || !std::isfinite(o.step_size)) {
    return absl::InvalidArgumentError(
        absl::StrCat("attack: step_size must be finite and > 0, got ", o.step_size));
  }
  if (o.steps < 1) {
    return absl::InvalidArgumentError(absl::StrCat("attack: steps must be >= 1, got ", o.steps));
  }
  if (o.kind == AttackKind::kFgsm && o.steps != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("attack: FGSM takes exactly one step, got steps=", o.steps));
  }
  if (std::isnan(o.clip_min) || std::isnan(o.clip_max) || !(o.clip_min <= o.clip_max)) {
    return absl::InvalidArgumentError(absl::StrCat("attack: need clip_min <= clip_max, got [",
                                                   o.clip_min, ", ", o.clip_max, "]"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Attack>> NewAttack(const AttackOptions& options) {
  if (absl::Status s = ValidateAttackOptions(options); !s.ok()) return s;
  return std::unique_ptr<Attack>(new AttackImpl(options));
}

}  // namespace fedsim
