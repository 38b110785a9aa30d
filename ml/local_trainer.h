// One client's local training: minibatch steps over its rows of a dataset,
// from a base model, returning delta = local - base.
//
// Composed, not configured: the caller passes the Optimizer (SGD, SAM, ...;
// ml/optimizer.h) and an optional per-batch input transform (adversarial
// examples, ...; ml/batch_transform.h). The schedule (epochs or steps, batch
// size) is all the trainer decides itself.
//
// Deterministic: the result is a pure function of (model config, base, data
// rows, schedule, optimizer and transform settings, seed); batch order comes
// from Rng(seed, "batch_order", epoch), the transform's randomness from
// Rng(seed, "transform", step), the optimizer's (an objective's inner
// attack) from Rng(seed, "optimizer", step). Single-threaded. Thread
// safety: `model`, `optimizer` and `transform` are used as scratch (one of
// each per thread); `data` is only read.
#ifndef FEDSIM_ML_LOCAL_TRAINER_H_
#define FEDSIM_ML_LOCAL_TRAINER_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "ml/batch_transform.h"
#include "ml/model.h"
#include "ml/optimizer.h"

namespace fedsim {

// How many steps of which batch size a task takes.
struct LocalSchedule {
  // Default: 1. Passes over the client's rows (reshuffled each epoch); used when steps == 0.
  uint32_t epochs = 1;
  // Default: 0 = use epochs. Otherwise exactly this many minibatch steps,
  // cycling through reshuffled epochs as needed.
  uint32_t steps = 0;
  // Default: 10. The last batch of an epoch may be smaller.
  uint32_t batch_size = 10;

  // Steps a task takes on a client with `rows` examples.
  uint64_t StepsFor(size_t rows) const;
  // Examples a task processes on a client with `rows` examples (what the
  // device model turns into compute time).
  uint64_t ExamplesFor(size_t rows) const;
};

struct LocalTrainingResult {
  std::vector<float> delta;      // local - base, NumParams() floats
  double mean_loss = 0.0;        // mean minibatch loss over the task
  uint64_t steps = 0;
  uint64_t examples_processed = 0;
};

// Resets the optimizer, then takes schedule.StepsFor(indices.size()) steps:
// each gathers a minibatch, passes it through `transform` (if not null) and
// hands it to `optimizer`.
// REQUIRES: base.size() == model.NumParams() == the optimizer's size; indices
// non-empty and < data.size(); data.dim() == model.config().input_dim().
// InvalidArgument on shape mismatches or an empty schedule; the training
// itself cannot fail.
absl::StatusOr<LocalTrainingResult> TrainLocal(Model& model, std::span<const float> base,
                                               const Dataset& data,
                                               std::span<const uint32_t> indices,
                                               const LocalSchedule& schedule, Optimizer& optimizer,
                                               BatchTransform* transform, uint64_t seed);

}  // namespace fedsim

#endif  // FEDSIM_ML_LOCAL_TRAINER_H_
