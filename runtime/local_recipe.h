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

#include "absl/status/statusor.h"
#include "ml/batch_transform.h"
#include "ml/local_trainer.h"
#include "ml/optimizer.h"
#include "proto/scenario.pb.h"

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
// weight_decay, prox_mu), or SAM over that SGD step when `sam` is set.
// InvalidArgument naming the field for out-of-range values.
absl::StatusOr<LocalRecipe> NewLocalRecipe(const config::LocalTraining& local,
                                           size_t num_params);

// Forward-backward passes one step costs relative to a plain SGD step (SGD 1,
// SAM 2, each adversarial attack step one more): the device model multiplies
// a task's compute time by it, so costlier local training takes longer in
// virtual time just as it would on a device.
double ComputeCostMultiplier(const config::LocalTraining& local);

}  // namespace fedsim

#endif  // FEDSIM_RUNTIME_LOCAL_RECIPE_H_
