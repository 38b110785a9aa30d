// Participation processes: who can train when.
//
// A ParticipationModel turns the scenario's `participation` message into two
// views of the same per-client processes:
//
//  - Rounds (FedAU and its baselines): InRound(client, r) says whether the
//    client participates in participation round r = 0, 1, 2, ... . Bernoulli,
//    Markov and cyclic processes are defined on rounds (ALGORITHMS.md
//    section 5; the generators follow IBM/fedau util/util.py WorkerSampler).
//  - Time (asynchronous rules, sync FedAvg): AvailableAt(client, t) and an
//    ordered stream of availability changes. Trace windows are defined in
//    virtual seconds; a round process is mapped onto time when round_s > 0,
//    round r covering [r * round_s, (r + 1) * round_s).
//
// Every answer is a pure function of (seed, client, round or time): all
// randomness comes from Rng streams keyed by (seed, purpose, client, round),
// so the order of queries never changes the result.
//
// Per-client probabilities p_i come from `probability` (a Distribution,
// clipped to [0, 1]; Default: constant 1) or from FedAU's label-correlated
// generator p_i = min(1, max(p_min, p_mean C sum_c labeldist_i[c] m[c])),
// m ~ Dir(alpha_part 1_C) drawn once and shared by all clients. (The authors'
// code does not clip at 1; a probability above 1 is meaningless, so we do.)
//
// The processes, exactly (u_r = Rng(seed, "participation", client, r).Uniform()):
//  - always:    on in every round and at every time. p_i = 1.
//  - Bernoulli: on in round r iff u_r < p_i (independent across rounds).
//  - Markov(a): a_i = a, b_i = a (1/p_i - 1); if b_i > 1 then a_i /= b_i,
//               b_i = 1 (p_i = 0: a_i = 0, b_i = 1). The state before round
//               0 is on with probability p_i (Rng(seed, "participation_init",
//               client)); round r's state is one transition from round r-1's
//               (on -> off iff u_r < b_i, off -> on iff u_r < a_i), as the
//               authors' sampler updates before it reports. Stationary
//               on-probability: p_i.
//  - cyclic(P): on_i = max(1, round_half_even(P p_i)) (numpy's np.round),
//               off_i = max(1, P - on_i), L_i = on_i + off_i. With k drawn
//               uniformly from [0, off_i) (Rng(seed, "participation_phase",
//               client)), the client is off in rounds 0..k-1, then on for on_i
//               rounds, off for off_i, and so on: on in round r iff
//               (r + off_i - k) mod L_i >= off_i. This is the authors' "start
//               off with rounds_to_switch = randint(off)" sampler.
//  - trace:     windows [start_s, end_s) from a CSV (below). For rounds, round r
//               is the time r * round_s (1 s when round_s is 0) and the client
//               participates iff available then. p_i: `probability` (Default:
//               constant 1), used only by oracle rules.
//
// Time view of round processes: with round_s > 0, AvailableAt(i, t) =
// InRound(i, r) for the round r containing t (t < 0 counts as round 0). With
// round_s == 0 ("rounds only") round processes do not restrict time-driven
// rules: AvailableAt is true and the change stream is empty.
//
// Trace CSV: header `client,start_s,end_s`, read by util/csv.h (spaces around
// fields, CRLF line ends and a leading UTF-8 byte-order mark are accepted;
// blank lines and '#' comment lines are skipped). Relative paths are relative
// to the scenario's folder. A client may have several windows; overlapping or
// touching windows are merged. Clients not listed are never available. Errors
// are InvalidArgument "<file>:<line>: <what is wrong>" for a wrong header, a
// wrong number of fields, a non-numeric or non-finite value, a client id that
// is not in [0, num_clients), a negative start, or end <= start; NotFound
// when the file cannot be read.
//
// Code layout: the processes are in participation.cc, the change stream in
// participation_changes.cc, the p_i generators in participation_probability.h
// and the trace reader in participation_trace.h.
//
// Thread safety: not thread-safe, const methods included: InRound and
// AvailableAt advance a per-client Markov-chain cache. Called only from the
// engine thread. A ChangeStream keeps its own state and only reads the model
// (it needs no lock as long as the model is used from one thread).
#ifndef FEDSIM_SIM_PARTICIPATION_H_
#define FEDSIM_SIM_PARTICIPATION_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "algorithms/types.h"
#include "proto/scenario.pb.h"

namespace fedsim {

// One change of one client's availability on the time axis.
struct AvailabilityChange {
  double time = 0;  // virtual seconds
  ClientId client = 0;
  bool available = false;  // the state from `time` on
  bool operator==(const AvailabilityChange&) const = default;
};

class ParticipationModel {
 public:
  // Builds the model for `num_clients` clients.
  //  - label_distributions: per-client label histograms (counts or fractions;
  //    each row is normalized), needed only by the label-correlated generator:
  //    then it must hold num_clients rows of one common length C >= 1.
  //  - scenario_dir: folder that a relative trace CSV path is relative to.
  // InvalidArgument with every problem of ValidateParticipation
  // (config/fleet.h: Markov a not in (0, 1], period 0, negative or
  // non-finite round_s, probabilities outside [0, 1], a table of the wrong
  // length, ...), for missing or ragged label distributions, a NaN p_i, and
  // for bad trace rows; NotFound for an unreadable trace file.
  // REQUIRES: num_clients > 0.
  static absl::StatusOr<std::unique_ptr<ParticipationModel>> Create(
      const config::Participation& config, size_t num_clients,
      const std::vector<std::vector<double>>& label_distributions, uint64_t seed,
      const std::string& scenario_dir);

  // A trace model from given windows (recorded schedules, sim/schedule.h):
  // client i is available in the [start, end) windows of windows[i] (an end
  // may be +infinity: available from start on; overlapping or touching
  // windows are merged), with participation probability probabilities[i]
  // (used only by oracle rules) and rounds as for a trace (round_s; 0 = 1 s
  // per round). InvalidArgument when the sizes differ or are 0, a window is
  // not 0 <= start < end with a finite start, a probability is outside
  // [0, 1], or round_s is negative or not finite.
  static absl::StatusOr<std::unique_ptr<ParticipationModel>> FromWindows(
      std::vector<std::vector<std::pair<double, double>>> windows,
      std::vector<double> probabilities, double round_s);

  ParticipationModel(const ParticipationModel&) = delete;
  ParticipationModel& operator=(const ParticipationModel&) = delete;
  ~ParticipationModel();

  size_t num_clients() const { return num_clients_; }

  // p_i in [0, 1]. REQUIRES: id < num_clients().
  double probability(ClientId id) const { return p_[id]; }

  // True for the processes defined on rounds (always, Bernoulli, Markov,
  // cyclic); false for a trace, whose rounds are derived from time.
  bool round_based() const { return kind_ != Kind::kTrace; }

  // True when availability changes over virtual time: a trace, or a
  // Bernoulli / Markov / cyclic process with round_s > 0. When false,
  // AvailableAt is constant (true) and Changes() yields nothing.
  bool time_based() const;

  // Virtual seconds per round (0 = rounds only). Default: 0.
  double round_s() const { return round_s_; }

  // Whether client `id` participates in round `round`. O(1) for all
  // processes except Markov: O(round - last queried round) when rounds
  // increase, O(256) for a random access below it (the chain is recomputed
  // from a checkpoint kept every 256 rounds).
  // REQUIRES: id < num_clients().
  bool InRound(ClientId id, uint64_t round) const;

  // Whether client `id` may train at virtual time t (see the class comment).
  // REQUIRES: id < num_clients().
  bool AvailableAt(ClientId id, double t) const;

  // The round containing time t when round_s > 0: the r with
  // r * round_s <= t < (r + 1) * round_s, computed so that it agrees with the
  // change times r * round_s exactly; 0 for t < 0. REQUIRES: round_s() > 0.
  uint64_t RoundAt(double t) const;

  // The trace windows of a client, merged and sorted (empty for round processes).
  const std::vector<std::pair<double, double>>& windows(ClientId id) const;

  // The ordered stream of availability changes strictly after a time `after`.
  // Yields (time, client, available) in (time, client) order, one entry per
  // actual change: with the states AvailableAt(i, after) as the start, the
  // stream reproduces AvailableAt exactly. Memory O(N); each Next() costs
  // O(log N) plus, for Bernoulli and Markov, the rounds scanned to find that
  // client's next change (bounded per call: a client that keeps its state for
  // long is re-examined in slices of 1024 rounds).
  // The stream reads the model: the model must outlive it.
  // Not thread-safe.
  class ChangeStream {
   public:
    ~ChangeStream();
    // The next change, or nullopt when no client ever changes again.
    std::optional<AvailabilityChange> Next();

   private:
    friend class ParticipationModel;
    struct Entry {
      double time;
      ClientId client;
      // The round of the change (round processes) or index of the window
      // boundary (trace): 2 * window + (0 = start, 1 = end).
      uint64_t pos;
      // A probe is not a change: rounds before `pos` were scanned and showed
      // no change; scanning resumes at pos when it reaches the top.
      bool probe;
      bool operator>(const Entry& o) const {
        if (time != o.time) return time > o.time;
        return client > o.client;
      }
    };
    ChangeStream(const ParticipationModel* model, double after);
    // Pushes client c's next change after round `round`, where its state is
    // `state` (round processes).
    void ScheduleRound(ClientId c, uint64_t round, bool state);
    // The state of a Markov client in `round`, advancing its own cursor.
    bool MarkovState(ClientId c, uint64_t round);

    const ParticipationModel* model_;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
    // Per client: its current state in the stream, and (Markov) the chain
    // cursor: round_ and on-state at that round.
    std::vector<uint8_t> state_;
    std::vector<uint64_t> cursor_round_;
    std::vector<uint8_t> cursor_state_;
  };

  // The changes strictly after `after` (Default: 0, the run's start).
  std::unique_ptr<ChangeStream> Changes(double after = 0.0) const;

 private:
  enum class Kind { kAlways, kBernoulli, kMarkov, kCyclic, kTrace };

  ParticipationModel() = default;

  // Markov: the on-state in `round` using the model's cache.
  bool MarkovInRound(ClientId id, uint64_t round) const;
  // One Markov transition of client `id` into round `round`.
  bool MarkovStep(ClientId id, uint64_t round, bool state) const;
  // The Markov state of the chain before round 0.
  bool MarkovInitial(ClientId id) const;
  // Whether a Markov client in `state` can ever leave it.
  bool MarkovCanLeave(ClientId id, bool state) const;
  bool CyclicInRound(ClientId id, uint64_t round) const;
  // Cyclic: the first round after `round` whose state differs from round's.
  uint64_t CyclicNextChange(ClientId id, uint64_t round) const;
  bool TraceAt(ClientId id, double t) const;

  Kind kind_ = Kind::kAlways;
  size_t num_clients_ = 0;
  uint64_t seed_ = 0;
  double round_s_ = 0;
  std::vector<double> p_;
  // Markov: per-client transition probabilities off->on (a) and on->off (b).
  std::vector<double> markov_a_;
  std::vector<double> markov_b_;
  // Cyclic: per-client on/off run lengths and phase offset (off_i - k).
  std::vector<uint32_t> cyclic_on_;
  std::vector<uint32_t> cyclic_off_;
  std::vector<uint32_t> cyclic_shift_;
  // Trace: per-client merged, sorted [start, end) windows.
  std::vector<std::vector<std::pair<double, double>>> windows_;

  // Markov cache (mutable: see the thread-safety note). cursor: the last
  // round computed and its state; checkpoints: bit k = state in round 256 k.
  struct MarkovCache {
    bool valid = false;
    bool state = false;
    uint64_t round = 0;
    std::vector<uint64_t> checkpoints;
    uint64_t num_checkpoints = 0;
  };
  mutable std::vector<MarkovCache> markov_cache_;
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_PARTICIPATION_H_
