// RoundRoster: who a synchronous round still waits for.
//
// A synchronous rule (FedAvg, FedOpt) dispatches a cohort on one model
// version and commits once the cohort has reported. The roster holds that
// round's bookkeeping: whether a round is in progress, its version, and the
// dispatched clients that have not reported yet. It admits an update only
// from an outstanding client of the round in progress, so a straggler of an
// earlier round is refused by version and a repeated report by client.
//
// Checkpoint keys: "<rule>.round_active", "<rule>.round_version" and
// "<rule>.outstanding" (the clients, ascending).
//
// Thread safety: a plain value; not synchronized.
#ifndef FEDSIM_ALGORITHMS_ROUND_ROSTER_H_
#define FEDSIM_ALGORITHMS_ROUND_ROSTER_H_

#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "algorithms/algorithm.h"
#include "algorithms/types.h"

namespace fedsim {

class RoundRoster {
 public:
  // Starts a round on `version` that waits for the clients of `cohort`.
  // REQUIRES: no client twice in `cohort`.
  void Begin(Version version, std::span<const Dispatch> cohort);

  // Ends the round: from now on every update is refused by version.
  void End();

  // Takes `update`'s client off the round: OK when a round is in progress,
  // the update trained on its version and its client is outstanding.
  // Otherwise FailedPrecondition starting "late for round: " (naming the
  // task and its version, or the client), and nothing changes.
  absl::Status Admit(const ClientUpdate& update);

  // A lost task: its client no longer holds the round up (no-op when the
  // client is not outstanding).
  void Forget(ClientId client);

  bool active() const { return active_; }
  // The round's version (the last round's when none is active).
  Version version() const { return version_; }
  // Every dispatched client has reported or been forgotten.
  bool all_reported() const { return outstanding_.empty(); }

  void Save(AlgorithmState* out, const std::string& rule) const;
  // Back from Save's keys. InvalidArgument naming `rule` for a missing or
  // malformed key, a flag other than 0 or 1, or clients that are not
  // distinct ascending ids; *this is unchanged then.
  absl::Status Load(const AlgorithmState& in, const std::string& rule);

 private:
  bool active_ = false;
  Version version_ = 0;
  std::vector<ClientId> outstanding_;  // ascending
};

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_ROUND_ROSTER_H_
