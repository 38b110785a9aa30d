// Local training of many tasks at once on the GPU backend: C clients'
// models side by side in one GpuNet, one launch sequence per step for all
// C. Each client's data is uploaded once per task and its minibatches are
// gathered on the device; a client with fewer rows (smaller last batch,
// fewer steps) is masked in the steps it lacks, not padded with fake data.
//
// Each task's result is the result TrainLocal (ml/local_trainer.h) defines
// for it (the same batch order from Rng(seed, "batch_order", epoch), the
// same SGD or SAM arithmetic, the same loss and example counts), computed
// with the GPU backend's kernels: within float tolerance of the CPU path,
// and bit-identical whatever other tasks share the batch (one task alone
// gives the same bits as inside a batch of 64).
//
// Scope: SGD (momentum, weight decay, proximal term) and SAM on the mean
// cross-entropy, without a per-batch transform. Tasks with an objective
// (TRADES) or an attack transform train through NewModelOn's Model
// (ml/gpu/device.h) with TrainLocal instead.
//
// Thread safety: one thread at a time per trainer.
#ifndef FEDSIM_ML_GPU_BATCHED_TRAINER_H_
#define FEDSIM_ML_GPU_BATCHED_TRAINER_H_

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "ml/gpu/device.h"
#include "ml/gpu/gpu_net.h"
#include "ml/local_trainer.h"
#include "ml/model.h"
#include "ml/sgd.h"

namespace fedsim {

// What every task of one batch shares.
struct BatchedRecipe {
  LocalSchedule schedule;
  SgdOptions sgd;
  // Default: 0 = SGD. > 0: SAM with this radius (ml/optimizer.h).
  double sam_rho = 0.0;
};

// One task: a client's rows of `data`, from `base`.
struct BatchedTask {
  std::span<const float> base;
  const Dataset* data = nullptr;
  std::span<const uint32_t> indices;
  uint64_t seed = 0;
  // Optional: the owner of `data` (owner.get() == data). Given, the trainer
  // may keep the whole dataset on the device across Train calls, holding
  // this reference meanwhile, so that later tasks on it upload only their
  // row numbers. Without it, each Train uploads the task's rows.
  std::shared_ptr<const Dataset> owner;
};

class BatchedTrainer {
 public:
  // Up to `max_clients` tasks per Train on `device` (kCuda or kEmulated).
  // Errors as NewGpuNet.
  static absl::StatusOr<std::unique_ptr<BatchedTrainer>> Create(const ModelConfig& config,
                                                                const DeviceSpec& device,
                                                                int max_clients);

  // The number of clients (C) that fit in `free_bytes` of device memory at
  // batch size `batch_size`, keeping a quarter of it free, clamped to
  // [1, 1024]; `rows_per_client` sizes the uploaded data.
  static int ClientsThatFit(const ModelConfig& config, int batch_size, size_t rows_per_client,
                            size_t free_bytes);

  // Trains every task (tasks.size() <= max_clients()); results in task
  // order. InvalidArgument for a task TrainLocal would refuse (shape
  // mismatch, no rows, an empty schedule, a bad index) or for SGD options
  // NewSgdOptimizer refuses; Internal or ResourceExhausted when the device
  // fails.
  absl::StatusOr<std::vector<LocalTrainingResult>> Train(const BatchedRecipe& recipe,
                                                         std::span<const BatchedTask> tasks);

  ~BatchedTrainer();
  BatchedTrainer(const BatchedTrainer&) = delete;
  BatchedTrainer& operator=(const BatchedTrainer&) = delete;

  int max_clients() const { return max_clients_; }
  // The backend's name, "cuda:0 (NVIDIA H200, sm_90)" or "host emulation".
  std::string backend() const;

 private:
  BatchedTrainer(ModelConfig config, DeviceSpec device, int max_clients)
      : config_(std::move(config)), device_(device), max_clients_(max_clients) {}

  // A net for batches of `batch` rows (made again when the batch grows).
  absl::Status EnsureNet(int batch);
  // Device memory of at least `bytes` in *slot (regrown, not kept smaller).
  void* Buffer(int slot, size_t bytes);
  // Page-locked host memory of at least `bytes` for staging uploads.
  void* Staging(size_t bytes);
  // Frees the buffers, the staging memory and the device datasets (before
  // the net goes).
  void ReleaseBuffers();

  // A dataset kept on the device (BatchedTask::owner).
  struct DeviceData {
    std::shared_ptr<const Dataset> dataset;
    float* x = nullptr;
    int32_t* y = nullptr;
    size_t bytes = 0;
    uint64_t last_use = 0;  // the Train that last used it
  };
  // `owner` on the device (uploaded now if it was not), or nullptr when it
  // does not fit in the cache's share of device memory.
  const DeviceData* DeviceDataset(const std::shared_ptr<const Dataset>& owner);

  ModelConfig config_;
  DeviceSpec device_;
  int max_clients_;
  std::unique_ptr<gpu::GpuNet> net_;
  std::vector<std::pair<void*, size_t>> buffers_;
  void* staging_ = nullptr;
  size_t staging_bytes_ = 0;
  std::list<DeviceData> datasets_;  // a list: Train holds pointers to entries
  size_t datasets_bytes_ = 0;
  size_t datasets_cap_ = 0;  // set at first use from the free device memory
  uint64_t trains_ = 0;
};

}  // namespace fedsim

#endif  // FEDSIM_ML_GPU_BATCHED_TRAINER_H_
