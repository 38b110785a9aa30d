#include "sim/task_runner.h"

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace fedsim {

absl::StatusOr<std::unique_ptr<Model>> TaskRunner::AcquireModel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_models_.empty()) {
      auto m = std::move(free_models_.back());
      free_models_.pop_back();
      return m;
    }
  }
  return NewModel(data_->model);
}

void TaskRunner::ReleaseModel(std::unique_ptr<Model> model) {
  std::lock_guard<std::mutex> lock(mu_);
  free_models_.push_back(std::move(model));
}

absl::StatusOr<TaskResult> TaskRunner::Run(const TaskSpec& task, std::span<const float> base) {
  if (task.client >= data_->clients.size()) {
    return absl::InvalidArgumentError(absl::StrCat("task ", task.id, " names client ",
                                                   task.client, " but the run has ",
                                                   data_->clients.size(), " clients"));
  }
  FEDSIM_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, AcquireModel());
  if (base.size() != model->NumParams()) {
    ReleaseModel(std::move(model));
    return absl::InvalidArgumentError(absl::StrCat("task ", task.id, ": base model has ",
                                                   base.size(), " parameters, expected ",
                                                   data_->model.ToString()));
  }
  const auto& rows = data_->clients[task.client];
  absl::StatusOr<LocalTrainingResult> r =
      TrainLocal(*model, base, *data_->train, rows, LocalConfigFromProto(task.local), task.seed);
  ReleaseModel(std::move(model));
  if (!r.ok()) return r.status();
  TaskResult out;
  out.id = task.id;
  out.client = task.client;
  out.base = task.base;
  out.num_examples = rows.size();
  out.delta = std::move(r->delta);
  out.metrics["train_loss"] = r->mean_loss;
  out.metrics["steps"] = static_cast<double>(r->steps);
  out.metrics["examples_processed"] = static_cast<double>(r->examples_processed);
  return out;
}

}  // namespace fedsim
