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
// Which clock is used is an EventSource strategy (sim/event_source.h) chosen
// once; nothing in the loop branches on it.
//
// Models: the engine keeps the global model, publishes every committed
// version in the ModelStore under ModelRef::Global(v) and keeps it there
// while a task in flight needs it. Rules that own per-client models publish
// them through the ModelBank the engine implements (algorithms/algorithm.h).
//
// Metrics: every evaluation writes one row of named figures: the base
// columns (run_observer.h), the evaluator's extra figures, the per-client
// sample (client_accuracy_mean/min/max) when the rule owns client models,
// and the rule's own figures (Algorithm::MetricNames).
//
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
#include "core/clock.h"
#include "core/model_store.h"
#include "core/transport.h"
#include "proto/checkpoint.pb.h"
#include "proto/scenario.pb.h"
#include "sim/devices.h"
#include "sim/run_observer.h"

namespace fedsim {

class ParticipationModel;

// Scores models on the test set. Called from the engine thread only.
class EvaluatorInterface {
 public:
  virtual ~EvaluatorInterface() = default;
  // Figures Evaluate() reports beyond test_loss and test_accuracy (e.g.
  // "robust_accuracy"), in column order. Default: none.
  virtual std::vector<std::string> ExtraMetricNames() const { return {}; }
  // test_loss, test_accuracy and every ExtraMetricNames() figure of `params`.
  virtual MetricValues Evaluate(std::span<const float> params) = 0;
  // Clean test accuracy only (for the per-client sample). Default: the
  // test_accuracy of Evaluate().
  virtual double Accuracy(std::span<const float> params) {
    return Evaluate(params)["test_accuracy"];
  }
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
  // The scenario's local training, sent whole with every task (the rule's
  // per-task overrides applied). Its compute cost relative to plain SGD
  // (runtime/local_recipe.h ComputeCostMultiplier: SAM 2, PGD-k k+1, ...)
  // multiplies each task's compute time.
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
  // Default: 10. Client models scored at each evaluation when the rule owns
  // one per client (a fixed sample, Rng(seed, "eval_clients")); 0 = none.
  uint32_t eval_client_sample = 10;
  // Default: false (virtual clock).
  bool wall_clock = false;
  // Default: SystemClock(). The real clock: wall-clock mode's time, and the
  // wall seconds of timing.csv in either mode.
  Clock* clock = SystemClock();
  // Round-based and time-based availability (may be null: always available).
  ParticipationModel* participation = nullptr;
  std::vector<ScriptedChange> scripted;
  // Recorded schedule (replay / trace-driven runs): when set, the duration of
  // task k (k-th dispatch) comes from here instead of the device profiles.
  std::function<std::optional<double>(TaskId, ClientId)> duration_override;
  // Set from another thread (a signal watcher) to stop at the next event.
  const std::atomic<bool>* interrupt = nullptr;
  // Default: false. True when nothing after the stop needs the workers (the
  // evaluator does not use them and the rule keeps no client model on
  // them): the engine then calls Transport::ReleaseWorkers as soon as it
  // knows it will dispatch no more tasks and none is in flight, before the
  // last evaluation.
  bool release_workers_at_stop = false;

  // Checkpoints (sim/checkpoint.h stores them). After every
  // `checkpoint_every_commits`-th commit (0 = never; later when the last
  // periodic checkpoint took more than 1/20 of the wall time since it, on
  // `clock`, so that writing a large state stays near 5% of the run), at the end of that
  // event, and when the run stops (interrupted: before the final flush of a
  // partial buffer, so that resuming continues as if never stopped), the
  // engine asks every observer to flush (RunObserver::OnCheckpoint, which
  // records the output files' lengths) and hands its whole state to
  // `checkpoint_sink`; an error there stops the run. Default: no sink.
  uint32_t checkpoint_every_commits = 0;
  std::function<absl::Status(const ckpt::EngineState&)> checkpoint_sink;
  // A state to continue from instead of starting afresh: the algorithm loads
  // its part (LoadState, then Resume), the tasks that were in flight are
  // submitted to the transport again, and the loop goes on. REQUIRES: the
  // same scenario (and build) as the run that wrote it; the rest of this
  // config as that run's. Default: none.
  const ckpt::EngineState* resume_from = nullptr;
};

class Engine {
 public:
  // All pointers must outlive the engine. `store` is shared with the transport.
  Engine(EngineConfig config, Algorithm* algorithm, Transport* transport, ModelStore* store,
         EvaluatorInterface* evaluator, RunObserver* observer);
  ~Engine();

  // Runs to a stop condition. Errors: a rule that refuses to start (its
  // message), a transport failure (no workers), an algorithm error, or a
  // stalled run (nothing in flight, nothing scheduled and nobody to
  // dispatch), reported as FailedPrecondition.
  absl::StatusOr<RunSummary> Run();

  // The metrics columns of a run with this algorithm and evaluator, in order
  // (what RunObserver::OnStart receives). Valid after Run() has started.
  const std::vector<std::string>& metric_columns() const;

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
