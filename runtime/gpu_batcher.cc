#include "runtime/gpu_batcher.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace fedsim {
namespace {

bool SameRecipe(const BatchedRecipe& a, const BatchedRecipe& b) {
  return a.schedule.epochs == b.schedule.epochs && a.schedule.steps == b.schedule.steps &&
         a.schedule.batch_size == b.schedule.batch_size && a.sgd.lr == b.sgd.lr &&
         a.sgd.momentum == b.sgd.momentum && a.sgd.weight_decay == b.sgd.weight_decay &&
         a.sgd.prox_mu == b.sgd.prox_mu && a.sam_rho == b.sam_rho;
}

}  // namespace

int AutoGpuSlots(const RunData& data, uint32_t batch_size, const DeviceSpec& device) {
  size_t rows = 1;
  for (uint32_t r : data.client_rows) rows = std::max<size_t>(rows, r);
  const int fit = BatchedTrainer::ClientsThatFit(data.model, static_cast<int>(batch_size), rows,
                                                 DeviceFreeMemory(device));
  return std::clamp(fit, 1, 256);
}

absl::StatusOr<std::unique_ptr<GpuTaskBatcher>> GpuTaskBatcher::Create(const ModelConfig& config,
                                                                       const DeviceSpec& device,
                                                                       int capacity,
                                                                       absl::Duration window) {
  absl::StatusOr<std::unique_ptr<BatchedTrainer>> trainer =
      BatchedTrainer::Create(config, device, capacity);
  if (!trainer.ok()) return trainer.status();
  return std::unique_ptr<GpuTaskBatcher>(new GpuTaskBatcher(std::move(*trainer), capacity, window));
}

absl::StatusOr<LocalTrainingResult> GpuTaskBatcher::Train(const BatchedRecipe& recipe,
                                                          const BatchedTask& task) {
  Entry entry{&recipe, &task};
  std::unique_lock<std::mutex> lock(mu_);
  waiting_.push_back(&entry);
  last_arrival_ = absl::Now();
  cv_.notify_all();
  while (!entry.done) {
    if (!leading_) {
      LeadOne(lock);
    } else {
      cv_.wait(lock);
    }
  }
  return std::move(entry.result);
}

void GpuTaskBatcher::LeadOne(std::unique_lock<std::mutex>& lock) {
  leading_ = true;
  // Wait for more tasks while they keep coming and the batch is not full.
  while (static_cast<int>(waiting_.size()) < capacity_) {
    const absl::Time until = last_arrival_ + window_;
    if (absl::Now() >= until) break;
    cv_.wait_for(lock, absl::ToChronoNanoseconds(until - absl::Now()));
  }
  std::vector<Entry*> batch;
  const BatchedRecipe& recipe = *waiting_.front()->recipe;
  for (auto it = waiting_.begin();
       it != waiting_.end() && static_cast<int>(batch.size()) < capacity_;) {
    if (SameRecipe(*(*it)->recipe, recipe)) {
      batch.push_back(*it);
      it = waiting_.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<BatchedTask> tasks;
  tasks.reserve(batch.size());
  for (Entry* e : batch) tasks.push_back(*e->task);
  lock.unlock();
  absl::StatusOr<std::vector<LocalTrainingResult>> results = trainer_->Train(recipe, tasks);
  lock.lock();
  for (size_t i = 0; i < batch.size(); ++i) {
    if (results.ok()) {
      batch[i]->result = std::move((*results)[i]);
    } else {
      batch[i]->result = results.status();
    }
    batch[i]->done = true;
  }
  ++batches_;
  tasks_ += batch.size();
  leading_ = false;
  cv_.notify_all();
}

uint64_t GpuTaskBatcher::batches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_;
}

uint64_t GpuTaskBatcher::tasks() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_;
}

std::string GpuTaskBatcher::backend() const { return trainer_->backend(); }

}  // namespace fedsim
