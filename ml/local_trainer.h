// One client's local training: SGD over its rows of a dataset, from a base
// model, returning delta = local - base.
//
// Deterministic: the result is a pure function of (model config, base, data
// rows, config, seed); batch order comes from Rng(seed, "batch_order", epoch).
// Single-threaded. Thread safety: `model` is used as scratch (one per thread);
// `data` is only read.
#ifndef FEDSIM_ML_LOCAL_TRAINER_H_
#define FEDSIM_ML_LOCAL_TRAINER_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "ml/model.h"

namespace fedsim {

struct LocalTrainingConfig {
  // Default: 1. Passes over the client's rows (reshuffled each epoch); used when steps == 0.
  uint32_t epochs = 1;
  // Default: 0 = use epochs. Otherwise exactly this many minibatch steps,
  // cycling through reshuffled epochs as needed.
  uint32_t steps = 0;
  // Default: 10. The last batch of an epoch may be smaller.
  uint32_t batch_size = 10;
  // Default: 0.1.
  double lr = 0.1;
  // Default: 0 (plain SGD). Momentum buffers start at zero for every task.
  double momentum = 0.0;
  // Default: 0. L2 weight decay added to the gradient.
  double weight_decay = 0.0;
  // Default: 0. FedProx proximal term: gradient += prox_mu * (w - base).
  double prox_mu = 0.0;
};

struct LocalTrainingResult {
  std::vector<float> delta;      // local - base, NumParams() floats
  double mean_loss = 0.0;        // mean minibatch loss over the task
  uint64_t steps = 0;
  uint64_t examples_processed = 0;
};

// REQUIRES: base.size() == model.NumParams(); indices non-empty and < data.size();
// data.dim() == model.config().input_dim().
// InvalidArgument on shape mismatches; the training itself cannot fail.
absl::StatusOr<LocalTrainingResult> TrainLocal(Model& model, std::span<const float> base,
                                               const Dataset& data,
                                               std::span<const uint32_t> indices,
                                               const LocalTrainingConfig& config, uint64_t seed);

}  // namespace fedsim

#endif  // FEDSIM_ML_LOCAL_TRAINER_H_
