// Factories of the aggregation rules. Each builds the rule selected by its
// own case of config::Algorithm's oneof and returns the Algorithm interface;
// the concrete classes live in anonymous namespaces in their .cc files.
// Normally reached through the registry (registry.h), not called directly.
//
// Each rule also has one Validate function: every check of its parameters,
// written once, reported into a ProblemList with paths from the scenario root
// ("algorithm.fedbuff.buffer_size") and messages that say what to change. The
// registry row points at it, so `fedsim validate` and scenario loading run
// it (with file:line:col), and the rule's factory runs it too.
// REQUIRES of a Validate function: config's rule is the function's own.
// context.num_clients == 0 means unknown: checks against it are skipped.
//
// Common to every factory:
//  - InvalidArgument when config's rule is not the factory's own, or with
//    every problem of the rule's Validate, one "path: message" per line
//    ("algorithm.fedbuff.buffer_size: must be >= 1, got 0; ...").
//  - context.num_params, when non-zero, is the model size: updates of another
//    size are refused by Accept (InvalidArgument) and checkpoints of another
//    size by LoadState.
//  - Every rule is deterministic given the sequence of calls and the Rng
//    streams the engine passes to Select.
//
// Engine-facing semantics shared by the rules (see algorithm.h for the rest):
//  - Accept refusals that mean "dropped by the rule" (too stale, late for its
//    round) are FailedPrecondition; malformed updates are InvalidArgument.
//  - Commit consumes the readiness: after a Commit, ReadyToCommit is false
//    until the next Accept or the next deadline.
//  - Time-triggered rules (FedAvg's deadline, FedFix) rely on the engine
//    calling Select at the end of every event, after ReadyToCommit/Commit, and
//    on a timer at NextDeadline() == now still firing (as a later event).
//  - Selection with a concurrency C > 0 draws uniformly without replacement
//    from the idle available clients (draw order); "all" (C = 0 or a sync
//    cohort of everyone) is ascending id.
//
// Thread safety: the returned objects are not thread-safe; the engine calls
// them from its one event thread.
#ifndef FEDSIM_ALGORITHMS_RULES_H_
#define FEDSIM_ALGORITHMS_RULES_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "algorithms/algorithm.h"
#include "algorithms/registry.h"
#include "proto/scenario.pb.h"
#include "util/problems.h"

namespace fedsim {

// Synchronous FedAvg (ALGORITHMS.md section 1), "fedavg".
//  - Select starts a round only when none is in progress: m = clients_per_round
//    (or over_select m' >= m) clients sampled from the idle available ones;
//    fewer if fewer are idle; none (no round) if none is idle.
//  - The round is identified by its base version. Accept refuses updates of
//    another version, arriving after the deadline, or beyond the first m.
//  - ReadyToCommit when m updates are in, when every dispatched client has
//    reported or been lost (OnTaskLost), or at the deadline (round start +
//    deadline_s, NextDeadline). An arrival at exactly the deadline is on
//    time: at now == deadline, ReadyToCommit stays false after an Accept until
//    Select ends that event, so every arrival at that time that the engine
//    processes before its timer event counts.
//  - Commit: x += server_lr * sum_i w_i delta_i, w_i = n_i / sum n (EXAMPLES)
//    or 1/|S| (UNIFORM), over the accepted updates; none = model unchanged.
// clients_per_round in [1, N]; over_select 0 or in [clients_per_round, N];
// server_lr > 0; deadline_s >= 0; weighting EXAMPLES or UNIFORM.
void ValidateFedAvg(const config::Algorithm& config, const RuleCheckContext& context,
                    ProblemList* problems);
absl::StatusOr<std::unique_ptr<Algorithm>> NewFedAvg(const config::Algorithm& config,
                                                     const AlgorithmContext& context);

// FedAsync (section 2), "fedasync". Keeps `concurrency` clients training.
// Commits once per accepted update: x += alpha S(s) (base + delta - x), the
// base model read from fleet.model(base_version) inside Accept. prox_rho > 0
// is sent to every task as Dispatch.overrides.prox_mu.
// alpha in (0, 1]; concurrency in [1, N]; prox_rho >= 0; the staleness
// function (CheckStaleness). Defaults: staleness polynomial {a: 0.5}.
void ValidateFedAsync(const config::Algorithm& config, const RuleCheckContext& context,
                      ProblemList* problems);
void FillFedAsyncDefaults(config::Algorithm* config);
absl::StatusOr<std::unique_ptr<Algorithm>> NewFedAsync(const config::Algorithm& config,
                                                       const AlgorithmContext& context);

// FedBuff (section 3), "fedbuff". Keeps `concurrency` clients training;
// buffers S(s) w_i delta_i and commits when buffer_size updates are in:
// UNIFORM x += eta buf / K, EXAMPLES x += eta buf / sum n_i (w_i = n_i), with
// optional server momentum (m = beta m + step; x += m). Accept drops updates
// with staleness > max_staleness (when > 0). Finish flushes a partial buffer
// (dividing by the k updates there) when flush_at_end.
// buffer_size >= 1 and <= concurrency; concurrency in [1, N]; server_lr > 0;
// server_momentum in [0, 1); weighting set; the staleness function.
// Defaults: staleness polynomial {a: 0.5}.
void ValidateFedBuff(const config::Algorithm& config, const RuleCheckContext& context,
                     ProblemList* problems);
void FillFedBuffDefaults(config::Algorithm* config);
absl::StatusOr<std::unique_ptr<Algorithm>> NewFedBuff(const config::Algorithm& config,
                                                      const AlgorithmContext& context);

// FedFix-Delta (section 4), "fedfix". Windows of length Delta (delta_s, or
// delta_fraction x the largest ClientInfo::expected_duration, resolved at the
// first Select) starting at the time of the first Select. At each boundary
// (NextDeadline) one Commit: x += eta sum d_i delta_i over the updates with
// arrival_time <= boundary not yet aggregated, d_i = ceil(tau_i / Delta) p_i.
// Boundary ties as in FedAvg's deadline: at now == boundary, ReadyToCommit
// waits for an event without an Accept (the timer), so every arrival at the
// boundary processed before the timer lands in the window it closes.
// Select dispatches only at the first call's time and at the time of the last
// boundary Commit, so participants restart at the boundary; clients still
// training keep going. Empty windows commit with no change.
// Exactly one of delta_s, delta_fraction, > 0; server_lr > 0; concurrency
// <= N (0 = all).
void ValidateFedFix(const config::Algorithm& config, const RuleCheckContext& context,
                    ProblemList* problems);
absl::StatusOr<std::unique_ptr<Algorithm>> NewFedFix(const config::Algorithm& config,
                                                     const AlgorithmContext& context);

// Asynchronous FedAvg in Fraboni's framework (section 4), "async_fedavg".
// Commits once per arrival, x += eta d_i delta_i, d_i = 1 (IDENTICAL) or
// (sum_j 1/tau_j) tau_i p_i (WEIGHT); the freed client restarts at once
// (Select tops up to concurrency; 0 = all clients).
// server_lr > 0; concurrency <= N (0 = all); weights IDENTICAL or WEIGHT.
void ValidateAsyncFedAvg(const config::Algorithm& config, const RuleCheckContext& context,
                         ProblemList* problems);
absl::StatusOr<std::unique_ptr<Algorithm>> NewAsyncFedAvg(const config::Algorithm& config,
                                                          const AlgorithmContext& context);

// FedOpt (section 9), "fedopt": FedAvg's synchronous rounds with a server
// optimizer (Adam, Yogi, Adagrad, or FedAvgM's momentum) on the weighted mean
// delta; see fed_opt.cc for the exact update. Select starts a round only when
// none is in progress (clients_per_round clients sampled from the idle
// available ones); Accept refuses updates of another version or from a
// client not in the round; ReadyToCommit when every dispatched client has
// reported or been lost. A round with no update leaves the model and the
// optimizer state unchanged.
// Validate: optimizer set; server_lr > 0; beta1 in [0, 1); beta2 in [0, 1);
// tau > 0; clients_per_round in [1, N]; weighting set. Defaults: server_lr
// 0.01 (ADAM, YOGI, ADAGRAD) or 1.0 (MOMENTUM). State bytes: the moments m
// and v, 2 x params x 4 (MOMENTUM: m only).
void ValidateFedOpt(const config::Algorithm& config, const RuleCheckContext& context,
                    ProblemList* problems);
void FillFedOptDefaults(config::Algorithm* config);
uint64_t FedOptStateBytes(const config::Algorithm& config, uint64_t num_clients,
                          uint64_t num_params);
absl::StatusOr<std::unique_ptr<Algorithm>> NewFedOpt(const config::Algorithm& config,
                                                     const AlgorithmContext& context);

// Decentralized learning (section 6), "decentralized": D-PSGD, DFedAvg,
// DFedAvgM, DFedSAM and DFedSAM-MGS as variants of one rule (see
// decentralized.cc). Every client keeps its own model, published as
// ModelRef::OfClient(i, version); a round trains the participants from their
// own models, then mixes Q times over the topology's W (non-participants keep
// their models); the global model is the average of the client models.
// Validate: variant set; rho > 0 for SAM variants; momentum in [0, 1);
// lr_decay in (0, 1]; gossip_steps <= 1000; the topology and its W (with the
// fleet size: graph parameters, connectivity, an edge-list file's rows).
// Defaults: topology ring {}. Notes: the graph, W's properties and spectral gap.
void ValidateDecentralized(const config::Algorithm& config, const RuleCheckContext& context,
                           ProblemList* problems);
void FillDecentralizedDefaults(config::Algorithm* config);
uint64_t DecentralizedStateBytes(const config::Algorithm& config, uint64_t num_clients,
                                 uint64_t num_params);
std::vector<std::string> DecentralizedNotes(const config::Algorithm& config,
                                            const RuleCheckContext& context);
absl::StatusOr<std::unique_ptr<Algorithm>> NewDecentralized(const config::Algorithm& config,
                                                            const AlgorithmContext& context);

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_RULES_H_
