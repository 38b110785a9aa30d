#include "ml/optimizer.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"

namespace fedsim {
namespace {

absl::Status CheckSgd(const SgdOptions& o) {
  if (!(o.lr >= 0) || !std::isfinite(o.lr)) {
    return absl::InvalidArgumentError(absl::StrCat("sgd: lr must be finite and >= 0, got ", o.lr));
  }
  if (!(o.momentum >= 0 && o.momentum < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sgd: momentum must be in [0, 1), got ", o.momentum));
  }
  if (!(o.weight_decay >= 0) || !std::isfinite(o.weight_decay)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sgd: weight_decay must be finite and >= 0, got ", o.weight_decay));
  }
  if (!(o.prox_mu >= 0) || !std::isfinite(o.prox_mu)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sgd: prox_mu must be finite and >= 0, got ", o.prox_mu));
  }
  return absl::OkStatus();
}

std::string SgdName(const SgdOptions& o) {
  std::string s = absl::StrCat("sgd(lr=", o.lr);
  if (o.momentum > 0) absl::StrAppend(&s, ", momentum=", o.momentum);
  if (o.weight_decay > 0) absl::StrAppend(&s, ", weight_decay=", o.weight_decay);
  if (o.prox_mu > 0) absl::StrAppend(&s, ", prox_mu=", o.prox_mu);
  return s + ")";
}

// " on trades(...)" when there is an objective.
std::string OnObjective(const Objective* objective) {
  return objective != nullptr ? absl::StrCat(" on ", objective->Name()) : "";
}

// The gradient of the objective, or of the mean cross-entropy without one.
float Gradient(Objective* objective, Model& model, std::span<const float> params,
               const BatchView& batch, Rng& rng, std::span<float> grad) {
  if (objective != nullptr) return objective->Gradient(model, params, batch, rng, grad);
  return model.ForwardBackward(params, batch, grad);
}

class SgdOptimizer final : public Optimizer {
 public:
  SgdOptimizer(const SgdOptions& options, size_t num_params, std::unique_ptr<Objective> objective)
      : sgd_(options, num_params), objective_(std::move(objective)) {
    if (objective_ != nullptr) grad_.resize(num_params);
  }

  std::string Name() const override {
    return SgdName(sgd_.options()) + OnObjective(objective_.get());
  }

  float Step(Model& model, std::span<float> params, const BatchView& batch,
             std::span<const float> anchor, Rng& rng) override {
    if (objective_ == nullptr) {
      // Fused forward, backward and update: bit-identical to ForwardBackward
      // followed by Sgd::Step, with less memory traffic.
      return model.ForwardBackwardStep(params, batch, sgd_, anchor);
    }
    const float loss = objective_->Gradient(model, params, batch, rng, grad_);
    sgd_.Step(params, grad_, anchor);
    return loss;
  }

  int passes_per_step() const override { return objective_ != nullptr ? objective_->passes() : 1; }
  void Reset() override { sgd_.Reset(); }

 private:
  Sgd sgd_;
  std::unique_ptr<Objective> objective_;
  std::vector<float> grad_;  // only with an objective
};

class SamOptimizer final : public Optimizer {
 public:
  SamOptimizer(const SamOptions& sam, const SgdOptions& sgd, size_t num_params,
               std::unique_ptr<Objective> objective)
      : rho_(sam.rho),
        sgd_(sgd, num_params),
        objective_(std::move(objective)),
        grad_(num_params),
        perturbed_(num_params) {}

  std::string Name() const override {
    return absl::StrCat("sam(rho=", rho_, ", ", SgdName(sgd_.options()), ")",
                        OnObjective(objective_.get()));
  }

  float Step(Model& model, std::span<float> params, const BatchView& batch,
             std::span<const float> anchor, Rng& rng) override {
    const float loss = Gradient(objective_.get(), model, params, batch, rng, grad_);
    // ||g||_2 in double, in index order: deterministic and accurate.
    double sq = 0;
    for (float g : grad_) sq += static_cast<double>(g) * g;
    const float scale = static_cast<float>(rho_ / (std::sqrt(sq) + 1e-12));
    const size_t n = params.size();
    for (size_t i = 0; i < n; ++i) perturbed_[i] = params[i] + scale * grad_[i];
    // The descent direction is the gradient at the perturbed point; the
    // update (with momentum, weight decay and prox on the real weights) is
    // applied to params.
    Gradient(objective_.get(), model, perturbed_, batch, rng, grad_);
    sgd_.Step(params, grad_, anchor);
    return loss;
  }

  int passes_per_step() const override {
    return 2 * (objective_ != nullptr ? objective_->passes() : 1);
  }
  void Reset() override { sgd_.Reset(); }

 private:
  const double rho_;
  Sgd sgd_;
  std::unique_ptr<Objective> objective_;
  std::vector<float> grad_;
  std::vector<float> perturbed_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Optimizer>> NewSgdOptimizer(const SgdOptions& options,
                                                           size_t num_params,
                                                           std::unique_ptr<Objective> objective) {
  if (absl::Status s = CheckSgd(options); !s.ok()) return s;
  return std::unique_ptr<Optimizer>(new SgdOptimizer(options, num_params, std::move(objective)));
}

absl::StatusOr<std::unique_ptr<Optimizer>> NewSamOptimizer(const SamOptions& sam,
                                                           const SgdOptions& sgd, size_t num_params,
                                                           std::unique_ptr<Objective> objective) {
  if (absl::Status s = CheckSgd(sgd); !s.ok()) return s;
  if (!(sam.rho > 0) || !std::isfinite(sam.rho)) {
    return absl::InvalidArgumentError(
        absl::StrCat("sam: rho must be finite and > 0, got ", sam.rho));
  }
  return std::unique_ptr<Optimizer>(new SamOptimizer(sam, sgd, num_params, std::move(objective)));
}

}  // namespace fedsim
