// Local optimizers: how one client step turns a batch into a parameter
// update. The local trainer (local_trainer.h) composes an Optimizer with an
// optional per-batch input transform (batch_transform.h); neither knows the
// other, and neither knows scenarios (the runtime builds them from
// config::LocalTraining).
//
//   SGD (sgd.h): one fused forward-backward-update pass per step.
//   SAM (Foret et al. 2021; the local step of FedSAM and DFedSAM, Shi et al.
//   ICML 2023, ALGORITHMS.md section 6), on the same minibatch:
//       g     = grad F(w)
//       w_hat = w + rho * g / (||g||_2 + 1e-12)
//       w     = SGD step of w with the gradient grad F(w_hat)
//   (momentum, weight decay and the proximal term act on w as in SGD).
//
// Both minimize the batch's mean cross-entropy, or the Objective they are
// given (ml/objective.h; TRADES, ml/trades.h): grad F above is then the
// objective's gradient, and a step costs the objective's passes at each
// point it is evaluated.
//
// Thread safety: an Optimizer holds per-task state (momentum, scratch); one
// thread at a time. Deterministic: fixed-order arithmetic.
#ifndef FEDSIM_ML_OPTIMIZER_H_
#define FEDSIM_ML_OPTIMIZER_H_

#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "absl/status/statusor.h"
#include "ml/model.h"
#include "ml/objective.h"
#include "ml/sgd.h"
#include "util/rng.h"

namespace fedsim {

class Optimizer {
 public:
  virtual ~Optimizer() = default;

  // "sgd(lr=0.1, momentum=0.9)" and the like, for logs.
  virtual std::string Name() const = 0;

  // One step on `batch`: updates params in place. `anchor` is the task's base
  // model, read only by a proximal term. `rng` is a stream private to this
  // step, drawn from only by an objective that needs randomness (TRADES'
  // random start); SGD and SAM on the cross-entropy draw nothing. Returns
  // the batch's loss (the objective's value) at params before the step.
  // REQUIRES: params.size() == model.NumParams() == the optimizer's size;
  //           batch.n > 0; anchor empty or NumParams() floats.
  virtual float Step(Model& model, std::span<float> params, const BatchView& batch,
                     std::span<const float> anchor, Rng& rng) = 0;

  // Forward-backward passes one Step costs (SGD 1, SAM 2, times the
  // objective's passes): the device model's compute-time multiplier.
  virtual int passes_per_step() const = 0;

  // Zeroes per-task state (momentum buffers): every task starts afresh.
  virtual void Reset() = 0;
};

// SGD on the mean cross-entropy (one fused pass per step), or on
// `objective` when it is not null.
// InvalidArgument unless lr >= 0, 0 <= momentum < 1, weight_decay >= 0,
// prox_mu >= 0 (naming the bad one).
absl::StatusOr<std::unique_ptr<Optimizer>> NewSgdOptimizer(
    const SgdOptions& options, size_t num_params, std::unique_ptr<Objective> objective = nullptr);

struct SamOptions {
  // Default: 0.05. Radius of the ascent step (> 0).
  double rho = 0.05;
};

// SAM over an SGD step with `sgd` options, on the mean cross-entropy or on
// `objective` when it is not null (evaluated at w and at w_hat).
// InvalidArgument as NewSgdOptimizer, or unless rho is finite and > 0.
absl::StatusOr<std::unique_ptr<Optimizer>> NewSamOptimizer(
    const SamOptions& sam, const SgdOptions& sgd, size_t num_params,
    std::unique_ptr<Objective> objective = nullptr);

}  // namespace fedsim

#endif  // FEDSIM_ML_OPTIMIZER_H_
