// From the scenario's LocalTraining message (which travels whole inside every
// task) to what ml/'s trainer composes: the schedule, the optimizer and the
// per-batch transform. This is the one place that reads LocalTraining's
// fields; nothing copies them one by one anywhere else.
//
// Thread safety: pure functions; a LocalRecipe is used by one thread.
#ifndef FEDSIM_RUNTIME_LOCAL_RECIPE_H_
#define FEDSIM_RUNTIME_LOCAL_RECIPE_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "ml/adversarial.h"
#include "ml/batch_transform.h"
#include "ml/gpu/batched_trainer.h"
#include "ml/local_trainer.h"
#include "ml/optimizer.h"
#include "ml/trades.h"
#include "proto/scenario.pb.h"
#include "util/problems.h"

namespace fedsim {

struct LocalRecipe {
  LocalSchedule schedule;
  std::unique_ptr<Optimizer> optimizer;
  // Null = train on the batches as they are.
  std::unique_ptr<BatchTransform> transform;
};

// The schedule alone (epochs, steps, batch size).
LocalSchedule ScheduleFromConfig(const config::LocalTraining& local);

// The recipe for a model of `num_params` parameters: SGD (lr, momentum,
// weight_decay, prox_mu), or SAM over that SGD step when `sam` is set; the
// adversarial transform when `adversarial` is set, or, when it sets
// trades_beta, no transform and the TRADES objective (ml/trades.h) inside
// the optimizer.
// InvalidArgument naming the field for out-of-range values.
absl::StatusOr<LocalRecipe> NewLocalRecipe(const config::LocalTraining& local, size_t num_params);

// The recipe as the GPU backend's batched trainer takes it, when `local` is
// one it can batch: SGD or SAM on the mean cross-entropy, no adversarial
// training. nullopt otherwise (such tasks train through the Model
// interface, on the same device). Values are not checked here (the batched
// trainer checks them as NewLocalRecipe does).
std::optional<BatchedRecipe> BatchedRecipeFor(const config::LocalTraining& local);

// Forward-backward passes one step costs per clean example, relative to a
// plain SGD step: SGD 1, SAM 2, plus an adversarial attack's passes over its
// share of the batch (PGD-k on every row: k more, so k + 1 under SGD and
// k + 2 under SAM; CONCAT also trains on the appended rows; see
// AdversarialCostMultiplier). TRADES with PGD-k: k + 2 under SGD, 2 (k + 2)
// under SAM (TradesPasses). The device model multiplies a task's compute
// time by it, so costlier local training takes longer in virtual time just
// as it would on a device.
double ComputeCostMultiplier(const config::LocalTraining& local);

// The attack and mix that `adversarial` describes, with the attack-dependent
// defaults filled in (PGD: 10 steps of 0.01 from a random start; FGSM: one
// step of eps from the clean input). Field values are not checked here: see
// ValidateAdversarial.
AdversarialOptions AdversarialFromConfig(const config::Adversarial& adversarial);

// The TRADES objective that `adversarial` describes when it sets
// trades_beta: its attack (as AdversarialFromConfig's) and beta.
TradesOptions TradesFromConfig(const config::Adversarial& adversarial);

// Adds a problem under `path` (e.g. "local.adversarial") for each field of
// `adversarial` that NewLocalRecipe would reject or that makes no sense:
// unspecified enums, eps negative, zero or not finite, a step_size that is
// not > 0, steps 0, FGSM with steps other than 1, ratio outside (0, 1], an
// empty or NaN clip range; with trades_beta: a beta that is not finite and
// > 0, a ratio other than 1, mode CONCAT or no random start (values TRADES
// would not use). The config layer calls it during validation.
void ValidateAdversarial(const config::Adversarial& adversarial, const std::string& path,
                         ProblemList* problems);

}  // namespace fedsim

#endif  // FEDSIM_RUNTIME_LOCAL_RECIPE_H_
