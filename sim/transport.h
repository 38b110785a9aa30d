// How the engine gets tasks trained: the seam between the deterministic event
// loop and whatever executes tasks (threads in this process, or worker
// processes over gRPC).
//
// The engine decides what runs and in which order effects apply; a transport
// only moves tasks out and results back. Results may physically arrive in any
// order; the engine asks for exactly the one it needs next (virtual clock) or
// for whichever comes first (wall clock).
#ifndef FEDSIM_SIM_TRANSPORT_H_
#define FEDSIM_SIM_TRANSPORT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "algorithms/types.h"
#include "ml/local_trainer.h"

namespace fedsim {

// One unit of local work. Everything in it is a deterministic function of the
// scenario and the engine's state, so re-running a task (after a worker died)
// gives the identical result.
struct TaskSpec {
  TaskId id = 0;
  ClientId client = 0;
  Version base_version = 0;
  uint64_t seed = 0;            // batch order and other local randomness
  LocalTrainingConfig local;    // with the algorithm's per-task overrides applied
  double duration_s = 0;        // scripted duration (wall-clock emulation may sleep it)
  // Virtual time at which the engine will need the result: executors should
  // run the earliest-due tasks first so the engine waits as little as possible.
  double due = 0;
};

struct TaskResult {
  TaskId id = 0;
  ClientId client = 0;
  Version base_version = 0;
  uint64_t num_examples = 0;  // the client's n_i
  std::vector<float> delta;
  std::map<std::string, double> metrics;
};

// Global model versions shared between the engine (writer) and transports
// (readers: workers fetch base versions). Thread-safe.
class ModelStore {
 public:
  using Params = std::shared_ptr<const std::vector<float>>;
  void Put(Version v, Params params);
  // nullptr when v is not (or no longer) kept.
  Params Get(Version v) const;
  void Release(Version v);
  size_t size() const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<Version, Params> versions_;
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Engine thread. Makes the task available for execution. REQUIRES: the
  // task's base version is in the ModelStore the transport was built with.
  virtual void Submit(const TaskSpec& task) = 0;

  // Blocks until the result of task `id` has arrived and returns it; results
  // of other tasks arriving meanwhile are kept for later calls. Errors:
  // Unavailable when it cannot be produced (no worker for too long),
  // Cancelled when the transport is shut down. REQUIRES: id was submitted and
  // not cancelled, and its result was not returned before.
  virtual absl::StatusOr<TaskResult> Await(TaskId id) = 0;

  // Wall-clock mode: the next result of any task, waiting until `deadline`;
  // nullopt if none came by then.
  virtual absl::StatusOr<std::optional<TaskResult>> AwaitAny(absl::Time deadline) = 0;

  // The result of `id` is no longer wanted (its client dropped out); the
  // transport may skip or discard it.
  virtual void Cancel(TaskId id) = 0;

  // The run is over: stop executing, tell workers to exit. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_TRANSPORT_H_
