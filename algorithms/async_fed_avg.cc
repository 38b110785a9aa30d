// Asynchronous FedAvg inside Fraboni et al.'s framework.
//
// Paper: Y. Fraboni, R. Vidal, L. Kameni, M. Lorenzi, "A General Theory for
// Federated Optimization with Asynchronous and Heterogeneous Clients Updates",
// JMLR 24 (2023), arXiv:2206.10189. Spec: ALGORITHMS.md section 4.
//
// Where we differ from the paper / its code, and why:
//  - The paper aggregates "the next client to finish (ties: lowest id)". Here
//    the engine decides the order, (virtual time, dispatch sequence), and
//    commits after every arrival; ties at the same time therefore go to the
//    task dispatched first. Select returns idle clients in ascending id, so
//    among tasks started together the lowest id still wins; tasks started at
//    different times tie by start order, which we consider the closer reading
//    of "next to finish".
//  - tau_i is the client's expected (jitter-free) duration from ClientInfo;
//    sum_j 1/tau_j runs over all N clients and is computed once (first Select
//    or Commit), as the paper's code fixes durations up front.
//  - concurrency C > 0 (not in the paper, where all M train) caps how many
//    clients train; freed slots go to idle clients drawn uniformly.
//  - WEIGHT's p_i is n_i / sum n by default (weighting EXAMPLES, the engine's
//    ClientInfo::importance); the paper's experiments use uniform p_i = 1/N
//    (weighting UNIFORM). IDENTICAL (d_i = 1) ignores p_i.
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "algorithms/aggregate.h"
#include "algorithms/rule_util.h"
#include "algorithms/rules.h"
#include "util/checks.h"

namespace fedsim {
namespace {

class AsyncFedAvg final : public Algorithm {
 public:
  AsyncFedAvg(const config::AsyncFedAvg& c, const AlgorithmContext& context)
      : weight_by_duration_(c.weights() == config::AsyncFedAvg::WEIGHT),
        server_lr_(c.server_lr()),
        concurrency_(c.concurrency()),
        uniform_(c.weighting() == config::UNIFORM),
        num_params_(context.num_params) {}

  std::string_view Name() const override { return "async_fedavg"; }

  absl::StatusOr<std::vector<Dispatch>> Select(const FleetView& fleet, Rng& rng) override {
    if (weight_by_duration_ && !resolved_) Resolve(fleet);
    return TopUp(fleet, rng, concurrency_);
  }

  absl::Status Accept(const FleetView& fleet, ClientUpdate update) override {
    (void)fleet;
    absl::Status s = CheckDelta(update, num_params_);
    if (!s.ok()) return s;
    update.metrics.clear();
    pending_.push_back(std::move(update));
    return absl::OkStatus();
  }

  bool ReadyToCommit(const FleetView& fleet) const override {
    (void)fleet;
    return !pending_.empty();
  }

  absl::StatusOr<CommitResult> Commit(const FleetView& fleet, ModelBank& models) override {
    const std::span<float> global = models.global();
    if (weight_by_duration_ && !resolved_) Resolve(fleet);
    if (!init_error_.ok()) return init_error_;
    CommitResult result;
    // One pending update per commit under the engine's contract; more would
    // be applied in arrival order within this commit.
    for (const ClientUpdate& u : pending_) {
      if (u.delta.size() != global.size()) {
        return absl::InvalidArgumentError(absl::StrCat("async_fedavg: update of task ", u.task_id,
                                                       " does not match the model size"));
      }
      double d = 1.0;
      if (weight_by_duration_) {
        const ClientInfo& info = fleet.client(u.client);
        const double p =
            uniform_ ? 1.0 / static_cast<double>(fleet.num_clients()) : info.importance;
        d = inverse_duration_sum_ * info.expected_duration * p;
      }
      const double coef = server_lr_ * d;
      AddWeighted(global, coef, u.delta);
      result.applied.push_back(AppliedUpdate{
          .task_id = u.task_id, .client = u.client, .staleness = u.staleness, .weight = coef});
    }
    pending_.clear();
    return result;
  }

  absl::Status SaveState(AlgorithmState* out) const override {
    *out = AlgorithmState();
    PutUpdates(out, "async_fedavg.pending", pending_);
    return absl::OkStatus();
  }

  absl::Status LoadState(const AlgorithmState& in) override {
    absl::StatusOr<std::vector<ClientUpdate>> pending =
        GetUpdates(in, "async_fedavg.pending", num_params_);
    if (!pending.ok()) return pending.status();
    pending_ = *std::move(pending);
    return absl::OkStatus();
  }

 private:
  // sum_j 1/tau_j is a function of the fleet, so it is recomputed after a
  // LoadState rather than checkpointed.
  void Resolve(const FleetView& fleet) {
    resolved_ = true;
    inverse_duration_sum_ = 0;
    for (ClientId j = 0; j < fleet.num_clients(); ++j) {
      const double tau = fleet.client(j).expected_duration;
      if (!(tau > 0) || !std::isfinite(tau)) {
        init_error_ = absl::FailedPreconditionError(absl::StrCat(
            "async_fedavg.weights = WEIGHT needs every client's expected duration > 0; client ", j,
            " has ", tau));
        return;
      }
      inverse_duration_sum_ += 1.0 / tau;
    }
  }

  const bool weight_by_duration_;
  const double server_lr_;
  const uint32_t concurrency_;
  const bool uniform_;  // WEIGHT's p_i = 1/N, else the engine's n_i / sum n
  const size_t num_params_;

  bool resolved_ = false;
  absl::Status init_error_;
  double inverse_duration_sum_ = 0;
  std::vector<ClientUpdate> pending_;
};

}  // namespace

void ValidateAsyncFedAvg(const config::Algorithm& config, const RuleCheckContext& context,
                         ProblemList* problems) {
  const config::AsyncFedAvg& a = config.async_fedavg();
  CheckPositive(a.server_lr(), "algorithm.async_fedavg.server_lr", "1.0 is the paper's default",
                problems);
  CheckConcurrency(a.concurrency(), context.num_clients, true, "algorithm.async_fedavg.concurrency",
                   problems);
  if (a.weights() != config::AsyncFedAvg::IDENTICAL && a.weights() != config::AsyncFedAvg::WEIGHT) {
    problems->Add("algorithm.async_fedavg.weights", "is unspecified; use IDENTICAL or WEIGHT");
  }
  if (a.weighting() != config::EXAMPLES && a.weighting() != config::UNIFORM) {
    problems->Add("algorithm.async_fedavg.weighting",
                  "is unspecified; use UNIFORM (p_i = 1/N, the paper's) or EXAMPLES "
                  "(p_i = n_i / sum n)");
  }
}

absl::StatusOr<std::unique_ptr<Algorithm>> NewAsyncFedAvg(const config::Algorithm& config,
                                                          const AlgorithmContext& context) {
  if (config.rule_case() != config::Algorithm::kAsyncFedavg) {
    return absl::InvalidArgumentError("NewAsyncFedAvg: algorithm.async_fedavg is not set");
  }
  if (absl::Status s = ValidateInFactory(&ValidateAsyncFedAvg, config, context); !s.ok()) {
    return s;
  }
  return std::make_unique<AsyncFedAvg>(config.async_fedavg(), context);
}

}  // namespace fedsim
