// Synchronous FedAvg.
//
// Paper: H. B. McMahan, E. Moore, D. Ramage, S. Hampson, B. Aguera y Arcas,
// "Communication-Efficient Learning of Deep Networks from Decentralized Data",
// AISTATS 2017, arXiv:1602.05629. Spec: ALGORITHMS.md section 1.
//
// Where we differ from the paper, and why:
//  - The paper samples a fraction C of all K clients each round and waits for
//    all of them. We sample among the clients that are idle and available
//    (a participation process may hide some), start a smaller round when fewer
//    than m are idle, and add two straggler controls the paper does not have
//    (FedScale-style): a round deadline that drops late updates, and
//    over-selection (dispatch m', keep the first m).
//  - Weights n_i / sum n are over the updates actually applied, not over the
//    sampled cohort, so a dropped client does not shrink the step.
//  - An arrival at exactly the deadline is on time: the round closes at the
//    deadline only when the engine's timer fires (OnTimer), which it
//    processes after every same-time arrival of the round's tasks.
//  - Server learning rate eta_g (paper: 1) so FedAvg is FedOpt's SGD case.
//  - Each update is folded into an exact sum as it arrives (RoundSum,
//    algorithms/round_sum.h): the round's model does not depend on the order
//    the updates came in, so a deployment whose updates race each other
//    commits the simulation's model bit for bit, and the rule holds one
//    model-sized sum instead of every update of the round. An update whose
//    weighted values do not fit the sum (magnitude 2^19 or more) is refused
//    as malformed.
#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "algorithms/aggregate.h"
#include "algorithms/round_roster.h"
#include "algorithms/round_sum.h"
#include "algorithms/rule_util.h"
#include "algorithms/rules.h"
#include "util/checks.h"

namespace fedsim {
namespace {

class FedAvg final : public Algorithm {
 public:
  FedAvg(const config::FedAvg& c, const AlgorithmContext& context)
      : clients_per_round_(c.clients_per_round()),
        over_select_(c.over_select()),
        server_lr_(c.server_lr()),
        deadline_s_(c.deadline_s()),
        round_(c.weighting() == config::UNIFORM, context.num_params) {}

  std::string_view Name() const override { return "fedavg"; }

  absl::Status Start(const FleetView& fleet, ModelBank& models) override {
    (void)models;
    round_.SetUnitFromFleet(fleet);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<Dispatch>> Select(const FleetView& fleet, Rng& rng) override {
    if (roster_.active()) return std::vector<Dispatch>();
    const size_t want = over_select_ > 0 ? over_select_ : clients_per_round_;
    std::vector<Dispatch> cohort = SampleIdle(fleet, rng, want);
    if (cohort.empty()) return cohort;  // nobody idle: wait for an event
    roster_.Begin(fleet.version(), cohort);
    round_start_ = fleet.now();
    target_ = std::min<size_t>(clients_per_round_, cohort.size());
    // Every task of the round will be accepted: workers may pre-aggregate.
    if (deadline_s_ <= 0 && over_select_ == 0) {
      for (Dispatch& d : cohort) {
        d.fold_weight = round_.WeightOf(fleet.client(d.client).num_examples);
      }
    }
    return cohort;
  }

  absl::Status Accept(const FleetView& fleet, ClientUpdate update) override {
    (void)fleet;
    // Whatever happens next, an admitted client no longer holds the round up.
    if (absl::Status s = roster_.Admit(update); !s.ok()) return s;
    if (deadline_s_ > 0 && update.arrival_time > round_start_ + deadline_s_) {
      return absl::FailedPreconditionError(absl::StrCat("late for round: arrived at ",
                                                        update.arrival_time, " after the deadline ",
                                                        round_start_ + deadline_s_));
    }
    if (round_.count() >= target_) {
      return absl::FailedPreconditionError(absl::StrCat("late for round: it already has its ",
                                                        target_, " updates (over-selection)"));
    }
    return round_.Add(update);
  }

  void OnTaskLost(const FleetView& fleet, TaskId task, ClientId client) override {
    (void)fleet;
    (void)task;
    roster_.Forget(client);
  }

  bool ReadyToCommit(const FleetView& fleet) const override {
    if (!roster_.active()) return false;
    if (round_.count() >= target_ || roster_.all_reported()) return true;
    if (deadline_s_ <= 0) return false;
    // At exactly the deadline, the round waits for the timer (file comment).
    return deadline_reached_ || fleet.now() > round_start_ + deadline_s_;
  }

  absl::Status OnTimer(const FleetView& fleet) override {
    if (roster_.active() && deadline_s_ > 0 && fleet.now() >= round_start_ + deadline_s_) {
      deadline_reached_ = true;
    }
    return absl::OkStatus();
  }

  std::optional<VirtualTime> NextDeadline() const override {
    if (!roster_.active() || deadline_s_ <= 0) return std::nullopt;
    return round_start_ + deadline_s_;
  }

  absl::StatusOr<CommitResult> Commit(const FleetView& fleet, ModelBank& models) override {
    const std::span<float> global = models.global();
    (void)fleet;
    CommitResult result;
    if (absl::Status s = round_.CheckComplete("fedavg"); !s.ok()) return s;
    if (!round_.empty()) {
      if (global.size() != round_.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "fedavg: the round's sum has ", round_.size(), " values, the model ", global.size()));
      }
      round_.AddMeanTo(server_lr_, global);
      result.applied = round_.Applied(server_lr_);
    }
    // The round is over; its stragglers are refused by version from now on.
    roster_.End();
    deadline_reached_ = false;
    round_.Clear();
    target_ = 0;
    return result;
  }

  absl::Status SaveState(AlgorithmState* out) const override {
    *out = AlgorithmState();
    roster_.Save(out, "fedavg");
    PutScalar(out, "fedavg.round_start", round_start_);
    PutScalar(out, "fedavg.target", static_cast<double>(target_));
    PutScalar(out, "fedavg.deadline_reached", deadline_reached_ ? 1 : 0);
    round_.Save(out, "fedavg");
    return absl::OkStatus();
  }

  absl::Status LoadState(const AlgorithmState& in) override {
    absl::StatusOr<double> start = GetScalar(in, "fedavg.round_start");
    absl::StatusOr<uint64_t> target = GetCount(in, "fedavg.target");
    absl::StatusOr<uint64_t> reached = GetCount(in, "fedavg.deadline_reached");
    for (const absl::Status& s : {start.status(), target.status(), reached.status()}) {
      if (!s.ok()) return s;
    }
    if (*reached > 1 || !std::isfinite(*start)) {
      return absl::InvalidArgumentError("fedavg: inconsistent round state in checkpoint");
    }
    RoundRoster roster;
    if (absl::Status s = roster.Load(in, "fedavg"); !s.ok()) return s;
    RoundSum round = round_;
    if (absl::Status s = round.Load(in, "fedavg"); !s.ok()) return s;
    if (round.count() > *target) {
      return absl::InvalidArgumentError("fedavg: more updates than the round keeps in checkpoint");
    }
    roster_ = std::move(roster);
    round_start_ = *start;
    target_ = *target;
    deadline_reached_ = *reached == 1;
    round_ = std::move(round);
    return absl::OkStatus();
  }

 private:
  // Configuration.
  const uint32_t clients_per_round_;
  const uint32_t over_select_;
  const double server_lr_;
  const double deadline_s_;

  // The round in progress.
  RoundRoster roster_;
  VirtualTime round_start_ = 0;
  size_t target_ = 0;              // updates to keep: min(m, dispatched)
  bool deadline_reached_ = false;  // the deadline timer fired

  RoundSum round_;  // the round's updates, folded as they arrive
};

}  // namespace

void ValidateFedAvg(const config::Algorithm& config, const RuleCheckContext& context,
                    ProblemList* problems) {
  const config::FedAvg& a = config.fedavg();
  const uint32_t n = context.num_clients;  // 0 = unknown
  const uint32_t m = a.clients_per_round();
  if (m == 0 || (n > 0 && m > n)) {
    problems->Add("algorithm.fedavg.clients_per_round",
                  n > 0 ? absl::StrCat(m, " is outside [1, num_clients = ", n,
                                       "]; pick a cohort size in that range")
                        : absl::StrCat("must be >= 1, got ", m, "; pick a cohort size"));
  }
  const uint32_t over = a.over_select();
  if (over != 0 && (over < m || (n > 0 && over > n))) {
    problems->Add(
        "algorithm.fedavg.over_select",
        absl::StrCat(over, " must be 0 (off) or ",
                     n > 0 ? absl::StrCat("in [clients_per_round = ", m, ", num_clients = ", n, "]")
                           : absl::StrCat(">= clients_per_round = ", m),
                     ": it is how many clients are dispatched to keep the first "
                     "clients_per_round"));
  }
  CheckPositive(a.server_lr(), "algorithm.fedavg.server_lr", "1.0 is plain FedAvg", problems);
  CheckNonNegative(a.deadline_s(), "algorithm.fedavg.deadline_s", "use 0 for no deadline",
                   problems);
  if (a.weighting() != config::EXAMPLES && a.weighting() != config::UNIFORM) {
    problems->Add("algorithm.fedavg.weighting", "is unspecified; use EXAMPLES or UNIFORM");
  }
}

absl::StatusOr<std::unique_ptr<Algorithm>> NewFedAvg(const config::Algorithm& config,
                                                     const AlgorithmContext& context) {
  if (config.rule_case() != config::Algorithm::kFedavg) {
    return absl::InvalidArgumentError("NewFedAvg: algorithm.fedavg is not set");
  }
  if (absl::Status s = ValidateInFactory(&ValidateFedAvg, config, context); !s.ok()) return s;
  return std::make_unique<FedAvg>(config.fedavg(), context);
}

}  // namespace fedsim
