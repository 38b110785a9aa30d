// The aggregation-rule interface the engine drives.
//
// An Algorithm is a strategy object: it never owns a loop, a thread or a
// clock. The engine (sim/engine.h) calls it from its single event thread:
//
//   once, before anything else:      Start()        -> may refuse the fleet
//   at start and after every event:  Select()       -> whom to start now
//   when a task's update arrives:    Accept()       -> buffer it (or refuse)
//   when a task will never report:   OnTaskLost()
//   after every event:               ReadyToCommit()? Commit() -> new version
//   timers:                          NextDeadline() -> when to be woken;
//                                    OnTimer()      -> it is that time now
//   evaluations:                     ClientModel()  -> per-client models to score
//   every metrics row:               CollectMetrics() (names from MetricNames())
//   when the run stops:              Finish()       -> a last flush
//   checkpoints:                     SaveState() / LoadState()
//
// Models. Every model is named by a ModelRef (core/model_ref.h). The engine
// keeps the global model and publishes each committed version; a task trains
// from the current global version unless Dispatch::base names another model.
// A rule may own one model per client (decentralized gossip): it publishes
// client i's model through ModelBank::Publish and dispatches with
// base = ModelRef::OfClient(i, k). Such a rule has no global model of its
// own; it writes the average of its client models into ModelBank::global()
// at every Commit, so "the global model" (evaluation, final_model.bin) is the
// average model, and it returns client models from ClientModel() so the
// engine can score a fixed seeded sample of them.
//
// Synchronous FedAvg and asynchronous FedBuff differ only in Select and
// ReadyToCommit. Shared math lives in aggregate.h as free functions; rules are
// composed, never derived from one another.
//
// Thread safety: not thread-safe; called only from the engine thread.
#ifndef FEDSIM_ALGORITHMS_ALGORITHM_H_
#define FEDSIM_ALGORITHMS_ALGORITHM_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "algorithms/types.h"
#include "core/client_models.h"
#include "core/model_ref.h"
#include "util/rng.h"

namespace fedsim {

// What the engine knows about one virtual client.
struct ClientInfo {
  uint64_t num_examples = 0;      // n_i
  double importance = 0;          // p_i (n_i / sum n by default)
  double expected_duration = 0;   // tau_i: the task duration without jitter (seconds)
  double download_s = 0;          // one model transfer to the client (seconds)
  double upload_s = 0;            // one model transfer from the client (seconds)
  double participation_prob = 1;  // its participation process's p_i (oracle rules only)
  bool available = true;          // its participation process lets it train now
  bool busy = false;              // a task of it is in flight
};

// A read-only view of the run the engine hands to algorithms. Implemented by
// the engine and by test fakes (tests/fake_fleet.h).
class FleetView {
 public:
  virtual ~FleetView() = default;
  virtual size_t num_clients() const = 0;
  virtual const ClientInfo& client(ClientId id) const = 0;
  // Clients that are available and not busy, in ascending id order.
  virtual std::span<const ClientId> idle_available() const = 0;
  // Random access into idle_available() without materializing it: the k-th
  // smallest idle+available id, k < num_idle_available(). The engine answers
  // both in O(log N), so rules that sample a few clients from a large fleet
  // should prefer them to idle_available() (which costs O(N) after a change).
  virtual size_t num_idle_available() const { return idle_available().size(); }
  virtual ClientId nth_idle_available(size_t k) const { return idle_available()[k]; }
  virtual size_t num_busy() const = 0;
  virtual VirtualTime now() const = 0;
  // The current global model version (number of commits so far).
  virtual Version version() const = 0;
  // The model named `ref`, kept while a task or the algorithm may need it:
  // the current global version, the base of any task in flight, or a model
  // the rule published. Empty when it is not kept.
  virtual std::span<const float> model(const ModelRef& ref) const = 0;
  // Round-based participation (FedAU and kin): whether client `id` is
  // available in participation round `round`. Default: available().
  virtual bool ParticipatesInRound(ClientId id, uint64_t round) const {
    (void)round;
    return client(id).available;
  }
};

// The models a rule writes. Implemented by the engine and by test fakes.
class ModelBank {
 public:
  virtual ~ModelBank() = default;
  // The global model as the next version will be. Commit (and a Finish that
  // flushes) adds the rule's step here; the engine then publishes it as
  // version() + 1. Outside Commit/Finish it is the current global model.
  virtual std::span<float> global() = 0;
  // Makes `params` fetchable under `ref` (by workers and in-process
  // executors) so that tasks dispatched with Dispatch::base == ref can train
  // from it. The store shares the pointer; the rule must not change the
  // vector afterwards (publish a new one for a new version). The engine
  // forgets a published model once no task in flight needs it and the rule
  // has published a newer version for the same client.
  // REQUIRES: ref is a client reference (global versions are the engine's).
  virtual void Publish(const ModelRef& ref, std::shared_ptr<const std::vector<float>> params) = 0;
  // Where a rule with per-client models keeps them when they live outside
  // this process (worker processes, core/client_models.h); nullptr = in the
  // rule's own memory (LocalClientModels). Default: nullptr.
  virtual ClientModels* remote_client_models() { return nullptr; }
};

// Per-task changes an algorithm may ask for (FedAsync's proximal term, a
// decentralized variant's local schedule, a decaying learning rate). Each set
// field replaces the scenario's local-training value for that task only.
struct LocalOverrides {
  std::optional<double> prox_mu;
  std::optional<uint32_t> steps;
  // Multiplies the scenario's local.lr (a decaying learning rate).
  std::optional<double> lr_scale;
  std::optional<double> momentum;
  // > 0: train with SAM at this radius; 0: train without SAM.
  std::optional<double> sam_rho;
};

struct Dispatch {
  ClientId client = 0;
  // The model the task trains from. Default: nullopt = the current global
  // version. Anything else must have been published (ModelBank::Publish).
  std::optional<ModelRef> base;
  LocalOverrides overrides;
  // The weight this task's delta takes in the rule's exact round sum
  // (algorithms/round_sum.h), set only by a rule that will accept every task
  // of this Select call and needs nothing but their weighted sum. The engine
  // may then let workers pre-aggregate (core/task.h TaskSpec::fold_group):
  // Accept receives such a task's delta inside ClientUpdate::folded.
  // Default: nullopt = the delta comes on its own.
  std::optional<double> fold_weight;
};

// Opaque algorithm state for checkpoints: named scalars and named tensors.
struct AlgorithmState {
  std::map<std::string, std::vector<double>> scalars;
  std::map<std::string, std::vector<float>> tensors;
  bool operator==(const AlgorithmState&) const = default;
};

// Named figures for one metrics row ("consensus_distance", ...).
using MetricValues = std::map<std::string, double>;

class Algorithm {
 public:
  virtual ~Algorithm() = default;

  // Registry name ("fedavg", "fedbuff", ...).
  virtual std::string_view Name() const = 0;

  // Called once, before the first Select, with the fleet at time 0 and the
  // initial global model in models.global(). A rule that needs the fleet to
  // resolve its parameters (FedFix's window from the slowest client) does it
  // here; a rule with per-client models initializes and publishes them.
  // FailedPrecondition or InvalidArgument stop the run before it starts, with
  // the message shown to the user. Default: OK.
  virtual absl::Status Start(const FleetView& fleet, ModelBank& models) {
    (void)fleet;
    (void)models;
    return absl::OkStatus();
  }

  // Called instead of Start when a run continues from a checkpoint, after
  // LoadState: a rule that publishes per-client models publishes them again
  // (the new engine's store starts empty). Default: OK.
  virtual absl::Status Resume(const FleetView& fleet, ModelBank& models) {
    (void)fleet;
    (void)models;
    return absl::OkStatus();
  }

  // Whom to start now. Sync rules: a cohort when no round is in progress.
  // Async rules: top up to their concurrency. Returned clients must be in
  // fleet.idle_available() and distinct. `rng` is a stream private to this
  // call, keyed by (seed, "select", call index), so choices are reproducible.
  // An error stops the run (it is reported as the rule's failure).
  virtual absl::StatusOr<std::vector<Dispatch>> Select(const FleetView& fleet, Rng& rng) = 0;

  // Buffers one update. Returning a non-OK status refuses it (too stale, late
  // for its round, wrong shape): the engine logs the reason and drops it; the
  // model is unchanged. FailedPrecondition is the code for "dropped by rule";
  // InvalidArgument for a malformed update; any other code stops the run.
  virtual absl::Status Accept(const FleetView& fleet, ClientUpdate update) = 0;

  // A task will never report (its client dropped out, its worker is gone for
  // good). Sync rules stop waiting for it. Default: nothing to do.
  virtual void OnTaskLost(const FleetView& fleet, TaskId task, ClientId client) {
    (void)fleet;
    (void)task;
    (void)client;
  }

  virtual bool ReadyToCommit(const FleetView& fleet) const = 0;

  // Time-triggered rules (FedFix windows, round deadlines) return when they
  // want to be woken; nullopt = no timer. The engine asks after every event
  // and queues one timer event per distinct time.
  virtual std::optional<VirtualTime> NextDeadline() const { return std::nullopt; }

  // The timer asked for by NextDeadline() fires: fleet.now() is that time.
  // Every arrival at the same virtual time whose completion was queued
  // before the timer has been Accept()ed already; "the same" up to rounding:
  // such a completion due a few ulps after the timer arrives at the timer's
  // time (the virtual clock's tie rule, sim/event_source.h). After OnTimer
  // the engine calls ReadyToCommit/Commit and Select as after any event. An
  // error stops the run. Default: OK.
  virtual absl::Status OnTimer(const FleetView& fleet) {
    (void)fleet;
    return absl::OkStatus();
  }

  // REQUIRES: ReadyToCommit(fleet). Folds the buffer into models.global()
  // (adding weighted deltas: delta = local - base) and clears the buffer. The
  // engine then increments the version.
  virtual absl::StatusOr<CommitResult> Commit(const FleetView& fleet, ModelBank& models) = 0;

  // Called once when the run stops. Rules that flush a partial buffer
  // (FedBuff) commit it into models.global() here and return the result;
  // nullopt = nothing done (the global model must then be unchanged).
  virtual absl::StatusOr<std::optional<CommitResult>> Finish(const FleetView& fleet,
                                                             ModelBank& models) {
    (void)fleet;
    (void)models;
    return std::nullopt;
  }

  // Rules that own one model per client return client `id`'s current model;
  // the engine scores a fixed, seeded sample of them at every evaluation
  // (client_accuracy_mean/min/max). Default: empty (no per-client models).
  virtual std::span<const float> ClientModel(ClientId id) const {
    (void)id;
    return {};
  }

  // Names of the figures CollectMetrics() reports, fixed for the run (they
  // become metrics.csv columns, in this order). Default: none.
  virtual std::vector<std::string> MetricNames() const { return {}; }
  // Fills the figures named by MetricNames() for the metrics row being
  // written (a name left out gets an empty cell). Default: nothing.
  virtual void CollectMetrics(const FleetView& fleet, MetricValues* out) const {
    (void)fleet;
    (void)out;
  }

  virtual absl::Status SaveState(AlgorithmState* out) const = 0;
  virtual absl::Status LoadState(const AlgorithmState& in) = 0;
};

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_ALGORITHM_H_
