#include "ml/local_trainer.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "util/rng.h"

namespace fedsim {

uint64_t LocalSchedule::StepsFor(size_t rows) const {
  if (steps > 0) return steps;
  if (rows == 0 || batch_size == 0) return 0;
  const size_t batch = std::min<size_t>(batch_size, rows);
  return uint64_t{epochs} * ((rows + batch - 1) / batch);
}

uint64_t LocalSchedule::ExamplesFor(size_t rows) const {
  return steps > 0 ? uint64_t{steps} * batch_size : uint64_t{epochs} * rows;
}

absl::StatusOr<LocalTrainingResult> TrainLocal(Model& model, std::span<const float> base,
                                               const Dataset& data,
                                               std::span<const uint32_t> indices,
                                               const LocalSchedule& config, Optimizer& optimizer,
                                               BatchTransform* transform, uint64_t seed) {
  const size_t num_params = model.NumParams();
  if (base.size() != num_params) {
    return absl::InvalidArgumentError(
        absl::StrCat("TrainLocal: base has ", base.size(), " floats, the model ", num_params));
  }
  if (data.dim() != model.config().input_dim()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "TrainLocal: data dim ", data.dim(), " != model input_dim ", model.config().input_dim()));
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

  const size_t rows = indices.size();
  const size_t batch = std::min<size_t>(config.batch_size, rows);
  const size_t dim = static_cast<size_t>(data.dim());
  const uint64_t total_steps = config.StepsFor(rows);

  std::vector<float> params(base.begin(), base.end());
  std::vector<float> x(batch * dim);
  std::vector<int32_t> y(batch);
  std::vector<uint32_t> order(indices.begin(), indices.end());
  optimizer.Reset();

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
    BatchView view{x.data(), y.data(), static_cast<int>(n)};
    if (transform != nullptr) {
      Rng rng(seed, "transform", step);
      view = transform->Apply(model, params, view, rng);
    }
    Rng step_rng(seed, "optimizer", step);
    loss_sum += optimizer.Step(model, params, view, base, step_rng);
    result.examples_processed += n;
  }
  result.steps = total_steps;
  result.mean_loss = total_steps > 0 ? loss_sum / static_cast<double>(total_steps) : 0.0;
  // The delta overwrites the trained parameters in place: no second
  // model-sized buffer to allocate and zero-fill per task.
  float* __restrict p = params.data();
  const float* __restrict b = base.data();
  for (size_t i = 0; i < num_params; ++i) p[i] -= b[i];
  result.delta = std::move(params);
  return result;
}

}  // namespace fedsim
