// The aggregation-rule interface the engine drives.
//
// An Algorithm is a strategy object: it never owns a loop, a thread or a
// clock. The engine (sim/engine.h) calls it from its single event thread:
//
//   at start and after every event:  Select()       -> whom to start now
//   when a task's update arrives:    Accept()       -> buffer it (or refuse)
//   after every event:               ReadyToCommit()? Commit() -> new version
//   timers:                          NextDeadline() -> when to wake it up
//   checkpoints:                     SaveState() / LoadState()
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
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "algorithms/types.h"
#include "util/rng.h"

namespace fedsim {

// What the engine knows about one virtual client.
struct ClientInfo {
  uint64_t num_examples = 0;      // n_i
  double importance = 0;          // p_i (n_i / sum n by default)
  double expected_duration = 0;   // tau_i: the task duration without jitter (seconds)
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
  // The global model of version v, kept while a task or the algorithm may
  // need it. REQUIRES: v is the current version or the base of a task in flight.
  virtual std::span<const float> model(Version v) const = 0;
  // Round-based participation (FedAU and kin): whether client `id` is
  // available in participation round `round`. Default: available().
  virtual bool ParticipatesInRound(ClientId id, uint64_t round) const {
    (void)round;
    return client(id).available;
  }
};

// Per-task changes an algorithm may ask for (e.g. FedAsync's proximal term).
struct LocalOverrides {
  std::optional<double> prox_mu;
  std::optional<uint32_t> steps;
};

struct Dispatch {
  ClientId client = 0;
  LocalOverrides overrides;
};

// Opaque algorithm state for checkpoints: named scalars and named tensors.
struct AlgorithmState {
  std::map<std::string, std::vector<double>> scalars;
  std::map<std::string, std::vector<float>> tensors;
  bool operator==(const AlgorithmState&) const = default;
};

class Algorithm {
 public:
  virtual ~Algorithm() = default;

  // Registry name ("fedavg", "fedbuff", ...).
  virtual std::string_view Name() const = 0;

  // Whom to start now. Sync rules: a cohort when no round is in progress.
  // Async rules: top up to their concurrency. Returned clients must be in
  // fleet.idle_available() and distinct. `rng` is a stream private to this
  // call, keyed by (seed, "select", call index), so choices are reproducible.
  virtual std::vector<Dispatch> Select(const FleetView& fleet, Rng& rng) = 0;

  // Buffers one update. Returning a non-OK status refuses it (too stale, late
  // for its round, wrong shape): the engine logs the reason and drops it; the
  // model is unchanged. FailedPrecondition is the code for "dropped by rule".
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
  // want to be woken; the engine then calls ReadyToCommit/Commit/Select at
  // that time. nullopt = no timer.
  virtual std::optional<VirtualTime> NextDeadline() const { return std::nullopt; }

  // REQUIRES: ReadyToCommit(fleet). Folds the buffer into *global (adding
  // weighted deltas: delta = local - base) and clears the buffer. The engine
  // then increments the version.
  virtual absl::StatusOr<CommitResult> Commit(const FleetView& fleet,
                                              std::span<float> global) = 0;

  // Called once when the run stops. Rules that flush a partial buffer
  // (FedBuff) commit it here and return the result; nullopt = nothing done.
  virtual absl::StatusOr<std::optional<CommitResult>> Finish(const FleetView& fleet,
                                                             std::span<float> global) {
    (void)fleet;
    (void)global;
    return std::nullopt;
  }

  virtual absl::Status SaveState(AlgorithmState* out) const = 0;
  virtual absl::Status LoadState(const AlgorithmState& in) = 0;
};

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_ALGORITHM_H_
