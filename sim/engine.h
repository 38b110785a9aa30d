// The engine: one event loop over a queue ordered by (time, sequence number).
//
// Events are task completions, algorithm timers (FedFix windows, round
// deadlines), evaluations on a virtual-time cadence, availability changes and
// the stop time. The algorithm reacts to events; it never owns a loop.
//
// Two clocks, one loop:
//  - Virtual (simulation, the default): a task's duration is fixed when it is
//    dispatched (device profile x seeded jitter), so its completion is an event
//    at a known virtual time. The loop pops the earliest event and, for a
//    completion, waits for exactly that task's update to physically arrive
//    from whichever worker computed it. Workers compute every dispatched task
//    as soon as a slot frees, so parallelism is full while the order of
//    effects is fixed by virtual time: the same scenario and seed give
//    bit-identical results with any number of workers, in-process or not.
//  - Wall (deployment): time is seconds since the start; completions are
//    handled when they arrive and timers fire on the system clock.
// Which clock is used is decided by an EventSource strategy inside the
// engine; nothing else branches on it.
//
// Thread safety: not thread-safe; Run() is called once, on one thread, and
// the algorithm, observer and evaluator are only called from that thread.
#ifndef FEDSIM_SIM_ENGINE_H_
#define FEDSIM_SIM_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "algorithms/algorithm.h"
#include "ml/model.h"
#include "proto/scenario.pb.h"
#include "sim/devices.h"
#include "sim/run_observer.h"
#include "core/model_store.h"
#include "core/transport.h"

namespace fedsim {

class ParticipationModel;

// Evaluates a global model on the test set. Called from the engine thread.
class EvaluatorInterface {
 public:
  virtual ~EvaluatorInterface() = default;
  virtual EvalResult Evaluate(std::span<const float> params) = 0;
};

// A scripted change at a virtual time (from the scenario's `events`).
struct ScriptedChange {
  VirtualTime at = 0;
  ClientId client = 0;
  enum class Kind { kJoin, kLeave, kDropout } kind = Kind::kJoin;
};

struct EngineConfig {
  uint64_t seed = 1;
  // Per client: n_i, importance p_i, participation p_i (expected_duration is
  // filled by the engine from the profiles).
  std::vector<ClientInfo> clients;
  std::vector<DeviceProfile> profiles;
  // Examples one task of client i processes (for its compute time).
  std::vector<uint64_t> examples_per_task;
  // Default: 0. Multiplicative lognormal jitter of task durations.
  double jitter_sigma = 0;
  // The scenario's local training; tasks carry it with the rule's overrides.
  config::LocalTraining local;
  // Initial model (NumParams floats).
  std::vector<float> initial_params;
  // Stop conditions, whichever first (0 = unused).
  uint64_t max_commits = 0;
  double max_virtual_s = 0;
  double target_accuracy = 0;
  // Evaluation cadence (0 = unused).
  uint32_t eval_every_commits = 1;
  double eval_every_virtual_s = 0;
  // Default: false (virtual clock).
  bool wall_clock = false;
  // Round-based and time-based availability (may be null: always available).
  ParticipationModel* participation = nullptr;
  std::vector<ScriptedChange> scripted;
  // Recorded schedule (replay / trace-driven runs): when set, the duration of
  // task k (k-th dispatch) comes from here instead of the device profiles.
  std::function<std::optional<double>(TaskId, ClientId)> duration_override;
  // Set from another thread (a signal watcher) to stop at the next event.
  const std::atomic<bool>* interrupt = nullptr;
};

class Engine {
 public:
  // All pointers must outlive the engine. `store` is shared with the transport.
  Engine(EngineConfig config, Algorithm* algorithm, Transport* transport, ModelStore* store,
         EvaluatorInterface* evaluator, RunObserver* observer);
  ~Engine();

  // Runs to a stop condition. Errors: a transport failure (no workers), an
  // algorithm error, or a stalled run (nothing in flight, nothing scheduled
  // and nobody to dispatch) is reported as FailedPrecondition.
  absl::StatusOr<RunSummary> Run();

  // The global model (valid after Run()).
  const std::vector<float>& global_model() const;

  // Asks Run() to stop at the next event (e.g. on SIGINT). Thread-safe.
  void RequestStop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_ENGINE_H_
