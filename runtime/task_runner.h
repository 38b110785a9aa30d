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
#include <unordered_map>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "ml/model.h"
#include "runtime/run_setup.h"
#include "core/task.h"

namespace fedsim {

// Generated client data (RunData::generated) kept for reuse: the most
// recently trained clients' datasets, least recently used dropped first, up
// to this many bytes of features and labels (a client larger than that is
// generated for its task and not kept). Small fleets then generate each
// client once; a large fleet's memory stays bounded.
inline constexpr size_t kDefaultClientCacheBytes = size_t{64} << 20;

class TaskRunner {
 public:
  // `data` must outlive the runner.
  explicit TaskRunner(const RunData* data, size_t client_cache_bytes = kDefaultClientCacheBytes)
      : data_(data), cache_limit_(client_cache_bytes) {}

  // Trains task.client's rows from `base` (generating them first when the
  // run's client data is generated: RunData::generated); InvalidArgument for
  // an unknown client or a base of the wrong size. The result does not
  // depend on whether the client's data came from the cache.
  absl::StatusOr<TaskResult> Run(const TaskSpec& task, std::span<const float> base);

  // Clients whose data was generated so far (cache misses), for tests.
  uint64_t clients_generated() const;

 private:
  absl::StatusOr<std::unique_ptr<Model>> AcquireModel();
  void ReleaseModel(std::unique_ptr<Model> model);
  absl::StatusOr<ClientTrainData> TrainRows(uint32_t client);

  struct Cached {
    uint32_t client;
    std::shared_ptr<const Dataset> data;
    size_t bytes;
  };

  const RunData* data_;
  const size_t cache_limit_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Model>> free_models_;  // guarded by mu_
  std::list<Cached> cache_;                          // most recent first; guarded by mu_
  std::unordered_map<uint32_t, std::list<Cached>::iterator> cached_;  // guarded by mu_
  size_t cache_bytes_ = 0;                           // guarded by mu_
  uint64_t generated_ = 0;                           // guarded by mu_
};

}  // namespace fedsim

#endif  // FEDSIM_RUNTIME_TASK_RUNNER_H_
