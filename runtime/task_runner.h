// Executes TaskSpecs against the data of a run: the code shared by the
// in-process transport and the worker process (client/), so both compute the
// bit-identical result for a task.
//
// Thread-safe: Run() may be called from many threads at once; each call uses
// a Model instance of its own (models keep scratch workspaces). When client
// data is generated per task, it is generated here, on the thread (worker
// slot) that trains the client.
#ifndef FEDSIM_RUNTIME_TASK_RUNNER_H_
#define FEDSIM_RUNTIME_TASK_RUNNER_H_

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "core/task.h"
#include "ml/gpu/device.h"
#include "ml/model.h"
#include "runtime/gpu_batcher.h"
#include "runtime/run_setup.h"

namespace fedsim {

// Generated client data (RunData::generated) kept for reuse: the most
// recently trained clients' datasets, least recently used dropped first, up
// to a number of bytes of features and labels (a client larger than that is
// generated for its task and not kept). Small fleets then generate each
// client once; a large fleet's memory stays bounded.
inline constexpr size_t kDefaultClientCacheBytes = size_t{64} << 20;

// The cache a run uses: 1/32 of limits.memory_budget_mb (in MB of 10^6
// bytes), at least kDefaultClientCacheBytes and at most 256 MiB; 256 MiB
// when the budget is 0 (no limit). Each process that trains (the in-process
// runner, every worker) holds one. At the default 8,192 MB budget: 256 MB.
// A fleet whose data outgrows the cache regenerates a client on each of its
// tasks: scenarios/million_clients.textproto cut to 1,000 clients (about
// 110 MB of rows) ran FedAsync 5,000 commits in 3.8 s with a 64 MiB cache
// and 2.5 s with 256 MB; at 10^6 clients the cache only adds to peak memory
// (418 MB and 740 MB), since each client trains about once.
size_t ClientCacheBytes(uint64_t memory_budget_mb);

// Where a runner trains. On a GPU backend, tasks that the batched trainer
// can take (plain SGD or SAM: BatchedRecipeFor) from up to batch_capacity
// concurrent Run() calls train together in one launch sequence
// (runtime/gpu_batcher.h); the rest (adversarial training, evaluation)
// run through the Model interface on the same device.
struct TaskDevice {
  // Default: the CPU.
  DeviceSpec spec;
  // Tasks per batched launch sequence (a worker passes its slot count).
  // Default: 1.
  int batch_capacity = 1;
};

class TaskRunner {
 public:
  // `data` must outlive the runner.
  explicit TaskRunner(const RunData* data, size_t client_cache_bytes = kDefaultClientCacheBytes,
                      TaskDevice device = {})
      : data_(data), cache_limit_(client_cache_bytes), device_(device) {}

  // The backend that trains: DeviceSpec::DisplayName ("cpu", "cuda:0
  // (NVIDIA H200, sm_90)", "host emulation").
  std::string backend() const;

  // Trains task.client's rows from `base` (generating them first when the
  // run's client data is generated: RunData::generated), or for an
  // evaluation task (TaskKind::kEvaluate) scores `base` on the client's own
  // test split (RunData::client_test; FailedPrecondition without one).
  // InvalidArgument for an unknown client or a base of the wrong size. The result does not
  // depend on whether the client's data came from the cache.
  absl::StatusOr<TaskResult> Run(const TaskSpec& task, std::span<const float> base);

  // Clients whose data was generated so far (cache misses), for tests.
  uint64_t clients_generated() const;

 private:
  absl::StatusOr<std::unique_ptr<Model>> AcquireModel();
  // The batcher of a GPU runner, made on first use.
  absl::StatusOr<GpuTaskBatcher*> Batcher();
  void ReleaseModel(std::unique_ptr<Model> model);
  absl::StatusOr<ClientTrainData> TrainRows(uint32_t client);
  // An evaluation task: `base` scored on the client's own test split
  // (RunData::client_test), figures only.
  absl::StatusOr<TaskResult> EvaluateOnClient(const TaskSpec& task, Model& model,
                                              std::span<const float> base);

  struct Cached {
    uint32_t client;
    std::shared_ptr<const Dataset> data;
    size_t bytes;
  };

  const RunData* data_;
  const size_t cache_limit_;
  const TaskDevice device_;
  std::unique_ptr<GpuTaskBatcher> batcher_;  // guarded by mu_ (made once)
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Model>> free_models_;  // guarded by mu_
  std::list<Cached> cache_;                          // most recent first; guarded by mu_
  std::unordered_map<uint32_t, std::list<Cached>::iterator> cached_;  // guarded by mu_
  size_t cache_bytes_ = 0;                                            // guarded by mu_
  uint64_t generated_ = 0;                                            // guarded by mu_
};

}  // namespace fedsim

#endif  // FEDSIM_RUNTIME_TASK_RUNNER_H_
