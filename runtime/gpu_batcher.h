// Gathers the tasks that a worker's slots train at the same time into one
// batched GPU launch sequence (ml/gpu/batched_trainer.h): each slot thread
// hands its task to Train() and blocks; one of the waiting threads leads,
// collects the tasks that arrive within a short window (up to the batch's
// capacity, tasks with equal recipes together), trains them at once and
// wakes their owners.
//
// Results do not depend on how tasks were grouped: the batched trainer's
// result for a task is the same bits alone or among 63 others. So slot
// count, timing and arrival order change speed, never results.
//
// Thread safety: Train() may be called from many threads at once.
#ifndef FEDSIM_RUNTIME_GPU_BATCHER_H_
#define FEDSIM_RUNTIME_GPU_BATCHER_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ml/gpu/batched_trainer.h"
#include "ml/gpu/device.h"
#include "ml/local_trainer.h"
#include "runtime/run_setup.h"

namespace fedsim {

// The batch size (slots) of a GPU worker or in-process run given none: as
// many clients of the run's model and its largest client as fit in the
// device's free memory (BatchedTrainer::ClientsThatFit), at most 256 (more
// gain little once the GPU is busy, and each slot is a thread).
int AutoGpuSlots(const RunData& data, uint32_t batch_size, const DeviceSpec& device);

class GpuTaskBatcher {
 public:
  // Up to `capacity` tasks per launch sequence on `device`. `window` is how
  // long a leader waits for more tasks after the last one arrived (the batch
  // also starts as soon as it is full). Errors as BatchedTrainer::Create.
  static absl::StatusOr<std::unique_ptr<GpuTaskBatcher>> Create(
      const ModelConfig& config, const DeviceSpec& device, int capacity,
      absl::Duration window = absl::Milliseconds(5));

  // Trains `task` (with tasks of other threads that share its recipe) and
  // returns its result. The task's spans must stay valid until it returns.
  absl::StatusOr<LocalTrainingResult> Train(const BatchedRecipe& recipe, const BatchedTask& task);

  // Launch sequences run and tasks trained so far (for tests and logs).
  uint64_t batches() const;
  uint64_t tasks() const;
  std::string backend() const;

 private:
  struct Entry {
    const BatchedRecipe* recipe;
    const BatchedTask* task;
    bool done = false;
    absl::StatusOr<LocalTrainingResult> result = absl::UnknownError("not trained");
  };

  GpuTaskBatcher(std::unique_ptr<BatchedTrainer> trainer, int capacity, absl::Duration window)
      : trainer_(std::move(trainer)), capacity_(capacity), window_(window) {}

  // Leads one batch: the oldest waiting entry and the entries with its
  // recipe, up to capacity. Called with mu_ held; releases it while training.
  void LeadOne(std::unique_lock<std::mutex>& lock);

  std::unique_ptr<BatchedTrainer> trainer_;
  const int capacity_;
  const absl::Duration window_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Entry*> waiting_;  // guarded by mu_
  bool leading_ = false;        // guarded by mu_
  absl::Time last_arrival_;     // guarded by mu_
  uint64_t batches_ = 0;        // guarded by mu_
  uint64_t tasks_ = 0;          // guarded by mu_
};

}  // namespace fedsim

#endif  // FEDSIM_RUNTIME_GPU_BATCHER_H_
