#include "ml/local_trainer.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ml/sgd.h"
#include "util/rng.h"

namespace fedsim {

absl::StatusOr<LocalTrainingResult> TrainLocal(Model& model, std::span<const float> base,
                                               const Dataset& data,
                                               std::span<const uint32_t> indices,
                                               const LocalTrainingConfig& config, uint64_t seed) {
  const size_t num_params = model.NumParams();
  if (base.size() != num_params) {
    return absl::InvalidArgumentError(absl::StrCat("TrainLocal: base has ", base.size(),
                                                   " floats, the model ", num_params));
  }
  if (data.dim() != model.config().input_dim()) {
    return absl::InvalidArgumentError(absl::StrCat("TrainLocal: data dim ", data.dim(),
                                                   " != model input_dim ",
                                                   model.config().input_dim()));
  }
  if (indices.empty()) return absl::InvalidArgumentError("TrainLocal: no indices");
  for (uint32_t i : indices) {
    if (i >= data.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("TrainLocal: index ", i, " >= dataset size ", data.size()));
    }
  }
  if (config.batch_size == 0) return absl::InvalidArgumentError("TrainLocal: batch_size is 0");
  if (config.steps == 0 && config.epochs == 0) {
    return absl::InvalidArgumentError("TrainLocal: epochs and steps are both 0");
  }
  if (!(config.lr >= 0.0) || !(config.momentum >= 0.0 && config.momentum < 1.0) ||
      !(config.weight_decay >= 0.0) || !(config.prox_mu >= 0.0)) {
    return absl::InvalidArgumentError(
        "TrainLocal: need lr >= 0, 0 <= momentum < 1, weight_decay >= 0, prox_mu >= 0");
  }

  const size_t rows = indices.size();
  const size_t batch = std::min<size_t>(config.batch_size, rows);
  const size_t dim = static_cast<size_t>(data.dim());
  const size_t batches_per_epoch = (rows + batch - 1) / batch;
  const uint64_t total_steps =
      config.steps > 0 ? config.steps : uint64_t{config.epochs} * batches_per_epoch;

  std::vector<float> params(base.begin(), base.end());
  std::vector<float> x(batch * dim);
  std::vector<int32_t> y(batch);
  std::vector<uint32_t> order(indices.begin(), indices.end());
  Sgd sgd(SgdOptions{.lr = config.lr,
                     .momentum = config.momentum,
                     .weight_decay = config.weight_decay,
                     .prox_mu = config.prox_mu},
          num_params);

  LocalTrainingResult result;
  double loss_sum = 0.0;
  uint64_t epoch = 0;
  size_t pos = rows;  // forces a shuffle before the first step
  for (uint64_t step = 0; step < total_steps; ++step) {
    if (pos >= rows) {
      // Every epoch reshuffles the caller's order afresh, so the order of an
      // epoch depends only on (seed, epoch), not on earlier epochs.
      std::copy(indices.begin(), indices.end(), order.begin());
      Rng(seed, "batch_order", epoch).Shuffle(std::span<uint32_t>(order));
      ++epoch;
      pos = 0;
    }
    const size_t n = std::min(batch, rows - pos);
    data.Gather(std::span<const uint32_t>(order).subspan(pos, n), x.data(), y.data());
    pos += n;
    const BatchView view{x.data(), y.data(), static_cast<int>(n)};
    // Fused forward, backward and SGD step: bit-identical to ForwardBackward
    // followed by Sgd::Step, with less memory traffic.
    loss_sum += model.ForwardBackwardStep(params, view, sgd, base);
    result.examples_processed += n;
  }
  result.steps = total_steps;
  result.mean_loss = total_steps > 0 ? loss_sum / static_cast<double>(total_steps) : 0.0;
  result.delta.resize(num_params);
  for (size_t i = 0; i < num_params; ++i) result.delta[i] = params[i] - base[i];
  return result;
}

}  // namespace fedsim
