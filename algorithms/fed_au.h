// FedAU and the baselines of its paper (ALGORITHMS.md section 5), "fedau".
//
// Wang & Ji, "A Lightweight Method for Tackling Unknown Participation
// Statistics in Federated Averaging", ICLR 2024, arXiv 2306.03401; authors'
// code: IBM/fedau (main.py). Where we differ from the paper or the code, the
// .cc file says so at the top.
//
// Rounds are decided by the clients' participation processes, not by server
// sampling (sim/participation.h answers FleetView::ParticipatesInRound):
//
//  - The rule keeps its own round counter r (0, 1, ...; one Commit per round,
//    empty rounds included, so r == the number of its commits).
//  - Select, when no round is in progress, starts round r with every client
//    of fleet.idle_available() (ascending id) for which
//    fleet.ParticipatesInRound(i, r) is true. A participant that is busy or
//    unavailable (scripted leave) is not dispatched: it counts as not
//    participating. While a round is in progress Select returns nothing.
//  - The round completes when every dispatched client's update has been
//    accepted, refused (Accept error) or lost (OnTaskLost). A refused or lost
//    client counts as not participating: the server only observes updates.
//  - Empty rounds: when no round is in progress and no idle client
//    participates in round r, ReadyToCommit is true at once, and Commit
//    performs the empty round (no dispatch, no event needed; the model is
//    unchanged except for MIFA, which applies its memory every round). The
//    engine's usual "commit while ReadyToCommit, then Select" loop runs them.
//    This is the one exception to "no commit from an empty buffer": rounds
//    must advance for the processes and the FedAU intervals to advance.
//  - Accept refuses (FailedPrecondition) an update that is not from a pending
//    participant of the current round or whose base_version is not the
//    version the round started from; InvalidArgument for a wrong size
//    (context.num_params, when non-zero) or a non-finite value.
//
// Methods (config.fedau.method), eta = server_lr, N = num_clients, S_t the
// clients whose updates were accepted in round t:
//  - FEDAU:                 x += eta (1/N) sum_{S_t} omega_i delta_i, omega_i =
//                           mean of client i's recorded intervals (1 if none).
//                           Intervals are recorded at Commit for all N
//                           clients: participant: S_i + 1, S_i = 0; others:
//                           S_i += 1 and, when cutoff K > 0 and S_i >= K,
//                           record K and S_i = 0.
//  - AVERAGE_PARTICIPATING: x += eta (1/|S_t|) sum delta_i; empty: no change.
//  - AVERAGE_ALL:           x += eta (1/N) sum delta_i.
//  - KNOWN_PROB:            x += eta (1/N) sum delta_i / p_i, p_i =
//                           fleet.client(i).participation_prob (oracle); an
//                           update of a client with p_i = 0 is refused.
//  - MIFA:                  y_i = latest delta of i (0 before its first);
//                           x += eta (1/N) sum_{all i} y_i, every round.
//  - FEDVARP:               x += eta [ybar + (1/|S_t|) sum_{S_t} (delta_i - y_i)],
//                           ybar = (1/N) sum_i y_i before the round; then
//                           y_i = delta_i. Empty round: no change.
// CommitResult.applied lists the accepted updates in arrival order with the
// coefficient on each delta (eta included): eta omega_i / N, eta / |S_t|,
// eta / N, eta / (N p_i), eta / N (MIFA: the weight the new delta enters the
// memory average with), eta / |S_t| (FEDVARP, on delta_i; y_i's terms are
// memory).
//
// State (SaveState/LoadState, keys "fedau.*"): the round counter, per client
// the interval sum, interval count and S_i, the MIFA/FedVarp memories (only
// of clients that have one) and their running sum, and a round in progress
// (its participants, the updates accepted so far and its accumulator), so a
// round trip is exact at any point.
//
// Thread safety: the returned object is not thread-safe; the engine calls it
// from its one event thread.
#ifndef FEDSIM_ALGORITHMS_FED_AU_H_
#define FEDSIM_ALGORITHMS_FED_AU_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "algorithms/algorithm.h"
#include "algorithms/registry.h"
#include "proto/scenario.pb.h"
#include "util/problems.h"

namespace fedsim {

// Every problem of config.fedau (see rules.h for the Validate contract):
// method set, server_lr finite and > 0.
void ValidateFedAu(const config::Algorithm& config, const RuleCheckContext& context,
                   ProblemList* problems);

// Server state beyond the model: MIFA and FEDVARP keep every client's latest
// delta, num_clients x num_params x 4 bytes; the other methods a few scalars
// per client (3 x 8 bytes).
uint64_t FedAuStateBytes(const config::Algorithm& config, uint64_t num_clients,
                         uint64_t num_params);

// InvalidArgument when config's rule is not `fedau`, with every problem of
// ValidateFedAu, or when context.num_clients is 0.
absl::StatusOr<std::unique_ptr<Algorithm>> NewFedAu(const config::Algorithm& config,
                                                    const AlgorithmContext& context);

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_FED_AU_H_
