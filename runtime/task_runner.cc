#include "runtime/task_runner.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "runtime/local_recipe.h"
#include "util/status_macros.h"

namespace fedsim {

size_t ClientCacheBytes(uint64_t memory_budget_mb) {
  constexpr uint64_t kMost = uint64_t{256} << 20;
  if (memory_budget_mb == 0) return kMost;
  const uint64_t share =
      memory_budget_mb >= (kMost << 5) / 1'000'000 ? kMost : memory_budget_mb * 1'000'000 / 32;
  return std::clamp<uint64_t>(share, kDefaultClientCacheBytes, kMost);
}

absl::StatusOr<std::unique_ptr<Model>> TaskRunner::AcquireModel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_models_.empty()) {
      auto m = std::move(free_models_.back());
      free_models_.pop_back();
      return m;
    }
  }
  return NewModelOn(data_->model, device_.spec);
}

absl::StatusOr<GpuTaskBatcher*> TaskRunner::Batcher() {
  std::lock_guard<std::mutex> lock(mu_);
  if (batcher_ == nullptr) {
    absl::StatusOr<std::unique_ptr<GpuTaskBatcher>> made =
        GpuTaskBatcher::Create(data_->model, device_.spec, std::max(1, device_.batch_capacity));
    if (!made.ok()) return made.status();
    batcher_ = std::move(*made);
  }
  return batcher_.get();
}

std::string TaskRunner::backend() const { return device_.spec.DisplayName(); }

void TaskRunner::ReleaseModel(std::unique_ptr<Model> model) {
  std::lock_guard<std::mutex> lock(mu_);
  free_models_.push_back(std::move(model));
}

uint64_t TaskRunner::clients_generated() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generated_;
}

absl::StatusOr<ClientTrainData> TaskRunner::TrainRows(uint32_t client) {
  if (!data_->generated.has_value()) return ClientTrainRows(*data_, client);
  const std::vector<uint32_t>& ids = data_->generated->row_ids;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto hit = cached_.find(client);
    if (hit != cached_.end()) {
      cache_.splice(cache_.begin(), cache_, hit->second);
      const std::shared_ptr<const Dataset>& d = hit->second->data;
      return ClientTrainData{d, std::span<const uint32_t>(ids).first(d->size())};
    }
  }
  // Generated outside the lock, so slots generate different clients at once.
  // Two slots may generate the same client concurrently; they get equal data.
  FEDSIM_ASSIGN_OR_RETURN(ClientTrainData rows, ClientTrainRows(*data_, client));
  const size_t bytes =
      rows.data->size() * (static_cast<size_t>(rows.data->dim()) * sizeof(float) + sizeof(int32_t));
  std::lock_guard<std::mutex> lock(mu_);
  ++generated_;
  if (bytes <= cache_limit_ && !cached_.contains(client)) {
    cache_.push_front(Cached{client, rows.data, bytes});
    cached_[client] = cache_.begin();
    cache_bytes_ += bytes;
    while (cache_bytes_ > cache_limit_) {
      cache_bytes_ -= cache_.back().bytes;
      cached_.erase(cache_.back().client);
      cache_.pop_back();
    }
  }
  return rows;
}

absl::StatusOr<TaskResult> TaskRunner::EvaluateOnClient(const TaskSpec& task, Model& model,
                                                        std::span<const float> base) {
  if (task.client >= data_->client_test.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", task.id, " asks to evaluate client ", task.client,
                     " on its own test split, but this process holds no client's test split"));
  }
  const std::vector<uint32_t>& rows = data_->client_test[task.client];
  EvalResult sum;
  std::vector<float> x;
  std::vector<int32_t> y;
  // Chunks of 500 rows, as the central evaluator scores the test set.
  constexpr size_t kChunk = 500;
  for (size_t begin = 0; begin < rows.size(); begin += kChunk) {
    const size_t n = std::min(kChunk, rows.size() - begin);
    x.resize(n * static_cast<size_t>(data_->test->dim()));
    y.resize(n);
    data_->test->Gather(std::span<const uint32_t>(rows).subspan(begin, n), x.data(), y.data());
    const EvalResult r = model.Evaluate(base, BatchView{x.data(), y.data(), static_cast<int>(n)});
    sum.loss_sum += r.loss_sum;
    sum.correct += r.correct;
    sum.count += r.count;
  }
  TaskResult out;
  out.id = task.id;
  out.client = task.client;
  out.base = task.base;
  out.num_examples = static_cast<uint64_t>(sum.count);
  out.metrics[kEvalLossSum] = sum.loss_sum;
  out.metrics[kEvalCorrect] = static_cast<double>(sum.correct);
  out.metrics[kEvalCount] = static_cast<double>(sum.count);
  return out;
}

absl::StatusOr<TaskResult> TaskRunner::Run(const TaskSpec& task, std::span<const float> base) {
  if (task.client >= data_->num_clients()) {
    return absl::InvalidArgumentError(absl::StrCat("task ", task.id, " names client ", task.client,
                                                   " but the run has ", data_->num_clients(),
                                                   " clients"));
  }
  // On a GPU, plain SGD/SAM tasks train batched and need no Model of their own.
  const std::optional<BatchedRecipe> batched =
      device_.spec.is_gpu_backend() && task.kind != TaskKind::kEvaluate
          ? BatchedRecipeFor(task.local)
          : std::nullopt;
  std::unique_ptr<Model> model;
  size_t num_params = 0;
  if (batched.has_value()) {
    num_params = NetSpecFor(data_->model).num_params;
  } else {
    FEDSIM_ASSIGN_OR_RETURN(model, AcquireModel());
    num_params = model->NumParams();
  }
  struct Release {
    TaskRunner* runner;
    std::unique_ptr<Model>* model;
    ~Release() {
      if (*model != nullptr) runner->ReleaseModel(std::move(*model));
    }
  } release{this, &model};
  if (base.size() != num_params) {
    return absl::InvalidArgumentError(absl::StrCat("task ", task.id, ": base model has ",
                                                   base.size(), " parameters, expected ",
                                                   data_->model.ToString()));
  }
  if (task.kind == TaskKind::kEvaluate) return EvaluateOnClient(task, *model, base);
  absl::StatusOr<LocalRecipe> recipe = NewLocalRecipe(task.local, num_params);
  if (!recipe.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("task ", task.id, ": ", recipe.status().message()));
  }
  absl::StatusOr<ClientTrainData> rows = TrainRows(task.client);
  if (!rows.ok()) {
    return absl::Status(rows.status().code(),
                        absl::StrCat("task ", task.id, ": ", rows.status().message()));
  }
  absl::StatusOr<LocalTrainingResult> r;
  if (batched.has_value()) {
    FEDSIM_ASSIGN_OR_RETURN(GpuTaskBatcher * batcher, Batcher());
    r = batcher->Train(*batched,
                       BatchedTask{base, rows->data.get(), rows->rows, task.seed, rows->data});
  } else {
    r = TrainLocal(*model, base, *rows->data, rows->rows, recipe->schedule, *recipe->optimizer,
                   recipe->transform.get(), task.seed);
  }
  if (!r.ok()) return r.status();
  TaskResult out;
  out.id = task.id;
  out.client = task.client;
  out.base = task.base;
  out.num_examples = rows->rows.size();
  out.delta = std::move(r->delta);
  out.metrics["train_loss"] = r->mean_loss;
  out.metrics["steps"] = static_cast<double>(r->steps);
  out.metrics["examples_processed"] = static_cast<double>(r->examples_processed);
  return out;
}

}  // namespace fedsim
