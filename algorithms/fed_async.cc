// FedAsync.
//
// Paper: C. Xie, S. Koyejo, I. Gupta, "Asynchronous Federated Optimization",
// arXiv:1903.03934. Spec: ALGORITHMS.md section 2.
//
// Where we differ from the paper, and why:
//  - The paper's scheduler triggers clients at random and its updater has a
//    queue; here the engine keeps `concurrency` clients busy (the freed slot
//    goes to a client drawn uniformly from the idle available ones) and
//    delivers arrivals one at a time in virtual-time order, so the queue is
//    the engine's event queue.
//  - x_client = base + delta is formed in Accept from fleet.model(base), so the
//    engine may release old model versions as soon as the update is accepted.
//  - The paper's proximal term rho is sent per task as a local-training
//    override (prox_mu), not hard-wired into the client.
//  - Staleness convention. fedsim's s = version at arrival - base version is
//    0 for an update with no commit since its base. The paper's Algorithm 1
//    (updater: for t = 1..T, receive (x_new, tau), alpha_t = alpha s(t - tau),
//    x_t = (1 - alpha_t) x_{t-1} + alpha_t x_new; workers start from the
//    latest model x_{t-1} with its stamp) counts the update being applied, so
//    the same update has t - tau = 1 and is scaled by S(1) (2^-a for the
//    polynomial). The default is ours (FRESH_IS_ZERO); staleness_count:
//    FRESH_IS_ONE evaluates S(s + 1), the paper's. The AppliedUpdate still
//    reports the engine's s.
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

class FedAsync final : public Algorithm {
 public:
  FedAsync(const config::FedAsync& c, StalenessFn staleness, const AlgorithmContext& context)
      : alpha_(c.alpha()),
        staleness_(staleness),
        concurrency_(c.concurrency()),
        prox_rho_(c.prox_rho()),
        staleness_offset_(c.staleness_count() == config::FedAsync::FRESH_IS_ONE ? 1 : 0),
        num_params_(context.num_params) {}

  std::string_view Name() const override { return "fedasync"; }

  absl::StatusOr<std::vector<Dispatch>> Select(const FleetView& fleet, Rng& rng) override {
    std::vector<Dispatch> out = TopUp(fleet, rng, concurrency_);
    if (prox_rho_ > 0) {
      for (Dispatch& d : out) d.overrides.prox_mu = prox_rho_;
    }
    return out;
  }

  absl::Status Accept(const FleetView& fleet, ClientUpdate update) override {
    absl::Status s = CheckDelta(update, num_params_);
    if (!s.ok()) return s;
    std::span<const float> base = fleet.model(update.base);
    if (base.size() != update.delta.size()) {
      return absl::InvalidArgumentError(absl::StrCat("fedasync: update of task ", update.task_id,
                                                     " has ", update.delta.size(),
                                                     " values, its base model ", base.size()));
    }
    // Store x_client = base + delta in place of delta.
    for (size_t j = 0; j < base.size(); ++j) update.delta[j] += base[j];
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
    (void)fleet;
    CommitResult result;
    // The engine commits after every arrival, so there is one pending update;
    // should there be more, they mix in arrival order within this commit.
    for (const ClientUpdate& u : pending_) {
      if (u.delta.size() != global.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("fedasync: update of task ", u.task_id, " does not match the model size"));
      }
      const double alpha_t = alpha_ * staleness_(u.staleness + staleness_offset_);
      MixToward(global, alpha_t, u.delta);  // x += alpha_t (x_client - x)
      result.applied.push_back(AppliedUpdate{
          .task_id = u.task_id, .client = u.client, .staleness = u.staleness, .weight = alpha_t});
    }
    pending_.clear();
    return result;
  }

  absl::Status SaveState(AlgorithmState* out) const override {
    *out = AlgorithmState();
    PutUpdates(out, "fedasync.pending", pending_);
    return absl::OkStatus();
  }

  absl::Status LoadState(const AlgorithmState& in) override {
    absl::StatusOr<std::vector<ClientUpdate>> pending =
        GetUpdates(in, "fedasync.pending", num_params_);
    if (!pending.ok()) return pending.status();
    pending_ = *std::move(pending);
    return absl::OkStatus();
  }

 private:
  const double alpha_;
  const StalenessFn staleness_;
  const uint32_t concurrency_;
  const double prox_rho_;
  const uint64_t staleness_offset_;  // 1 with FRESH_IS_ONE (the paper's count), else 0
  const size_t num_params_;
  // Accepted, not yet committed; delta holds x_client (base + delta).
  std::vector<ClientUpdate> pending_;
};

}  // namespace

void ValidateFedAsync(const config::Algorithm& config, const RuleCheckContext& context,
                      ProblemList* problems) {
  const config::FedAsync& a = config.fedasync();
  if (!(a.alpha() > 0 && a.alpha() <= 1)) {
    problems->Add("algorithm.fedasync.alpha",
                  absl::StrCat(NumberText(a.alpha()),
                               " is outside (0, 1]; it is the mixing weight of each arrival, the "
                               "paper uses 0.6"));
  }
  CheckConcurrency(a.concurrency(), context.num_clients, false, "algorithm.fedasync.concurrency",
                   problems);
  CheckNonNegative(a.prox_rho(), "algorithm.fedasync.prox_rho", "use 0 for off", problems);
  CheckStaleness(a.staleness(), "algorithm.fedasync.staleness", problems);
  if (a.staleness_count() != config::FedAsync::FRESH_IS_ZERO &&
      a.staleness_count() != config::FedAsync::FRESH_IS_ONE) {
    problems->Add("algorithm.fedasync.staleness_count",
                  "is unspecified; use FRESH_IS_ZERO (fedsim's s) or FRESH_IS_ONE (the paper's "
                  "Algorithm 1, S(s + 1))");
  }
}

void FillFedAsyncDefaults(config::Algorithm* config) {
  config::Staleness* s = config->mutable_fedasync()->mutable_staleness();
  if (s->kind_case() == config::Staleness::KIND_NOT_SET) s->mutable_polynomial();
}

absl::StatusOr<std::unique_ptr<Algorithm>> NewFedAsync(const config::Algorithm& config,
                                                       const AlgorithmContext& context) {
  if (config.rule_case() != config::Algorithm::kFedasync) {
    return absl::InvalidArgumentError("NewFedAsync: algorithm.fedasync is not set");
  }
  if (absl::Status s = ValidateInFactory(&ValidateFedAsync, config, context); !s.ok()) return s;
  const config::FedAsync& c = config.fedasync();
  absl::StatusOr<StalenessFn> staleness =
      StalenessFn::FromConfig(c.staleness(), "algorithm.fedasync.staleness");
  if (!staleness.ok()) return staleness.status();
  return std::make_unique<FedAsync>(c, *staleness, context);
}

}  // namespace fedsim
