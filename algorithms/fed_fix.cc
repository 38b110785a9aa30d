// FedFix-Delta.
//
// Paper: Y. Fraboni, R. Vidal, L. Kameni, M. Lorenzi, "A General Theory for
// Federated Optimization with Asynchronous and Heterogeneous Clients Updates",
// JMLR 24 (2023), arXiv:2206.10189. Spec: ALGORITHMS.md section 4.
//
// Where we differ from the paper / its code, and why:
//  - Windows start at the time of the first Select (0 in a fresh run), not at
//    an absolute 0, so a rule built mid-run (or resumed) keeps its grid.
//  - d_i = ceil(tau_i / Delta) p_i uses the client's expected (jitter-free)
//    duration tau_i from ClientInfo, as the paper's code does with its
//    deterministic durations; with jitter the true finish time is used only to
//    decide the window. ceil is taken with a 1e-9 relative tolerance so that
//    tau_i = 2 Delta computed in floating point gives 2, not 3, and is at
//    least 1 (a zero duration would otherwise silence the client).
//  - concurrency C > 0 (not in the paper, where all M clients train) caps how
//    many clients train; at each boundary idle clients are drawn uniformly to
//    top up to C.
//  - p_i is n_i / sum n by default (weighting EXAMPLES, the engine's
//    ClientInfo::importance); the paper's experiments use uniform p_i = 1/N
//    (weighting UNIFORM). With label-skewed data the two differ a lot.
//
// Boundary ties. A window n covers arrival_time <= boundary_n (inclusive).
// The window closes when the engine's timer for the boundary fires
// (OnTimer): the engine queues an arrival's completion when it dispatches the
// task, and the boundary timer only after the event in which the previous
// window closed, so every arrival at exactly the boundary whose task was
// dispatched before that is processed before the timer and lands in the
// window it closes. Commit aggregates exactly the accepted updates with
// arrival_time <= the boundary it closes; Select dispatches only at the time
// of the last boundary Commit, so participants restart at the boundary.
// Ties up to rounding: a task that takes exactly k windows ends at restart +
// tau_i, which floating point may put an ulp after origin + (n+k+1) Delta;
// the engine treats such a completion as the tie it is and delivers it at the
// boundary, before the timer (sim/event_source.h), so the client keeps its
// period ceil(tau_i / Delta) and its weight d_i stays right.
#include <algorithm>
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

class FedFix final : public Algorithm {
 public:
  FedFix(const config::FedFix& c, const AlgorithmContext& context)
      : delta_s_(c.window_case() == config::FedFix::kDeltaS ? c.delta_s() : 0),
        delta_fraction_(c.window_case() == config::FedFix::kDeltaFraction ? c.delta_fraction() : 0),
        server_lr_(c.server_lr()),
        concurrency_(c.concurrency()),
        uniform_(c.weighting() == config::UNIFORM),
        num_params_(context.num_params) {}

  std::string_view Name() const override { return "fedfix"; }

  absl::Status Start(const FleetView& fleet, ModelBank& models) override {
    (void)models;
    return Resolve(fleet);
  }

  absl::StatusOr<std::vector<Dispatch>> Select(const FleetView& fleet, Rng& rng) override {
    if (!resolved_) return absl::FailedPreconditionError("fedfix: Select before Start");
    if (fleet.now() != restart_time_) return std::vector<Dispatch>();
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

  absl::Status OnTimer(const FleetView& fleet) override {
    if (resolved_ && fleet.now() >= Boundary()) boundary_reached_ = true;
    return absl::OkStatus();
  }

  bool ReadyToCommit(const FleetView& fleet) const override {
    if (!resolved_) return false;
    // The window closes at its boundary's timer (see the file comment).
    return boundary_reached_ || fleet.now() > Boundary();
  }

  std::optional<VirtualTime> NextDeadline() const override {
    if (!resolved_) return std::nullopt;
    return Boundary();
  }

  absl::StatusOr<CommitResult> Commit(const FleetView& fleet, ModelBank& models) override {
    const std::span<float> global = models.global();
    const VirtualTime boundary = Boundary();
    CommitResult result;
    std::vector<ClientUpdate> later;
    for (ClientUpdate& u : pending_) {
      if (u.arrival_time > boundary) {
        later.push_back(std::move(u));
        continue;
      }
      if (u.delta.size() != global.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("fedfix: update of task ", u.task_id, " does not match the model size"));
      }
      const ClientInfo& info = fleet.client(u.client);
      const double windows = std::max(1.0, std::ceil(info.expected_duration / delta_ - 1e-9));
      const double p = uniform_ ? 1.0 / static_cast<double>(fleet.num_clients()) : info.importance;
      const double coef = server_lr_ * windows * p;
      AddWeighted(global, coef, u.delta);
      result.applied.push_back(AppliedUpdate{
          .task_id = u.task_id, .client = u.client, .staleness = u.staleness, .weight = coef});
    }
    pending_ = std::move(later);
    boundary_reached_ = false;
    ++window_;
    restart_time_ = fleet.now();
    return result;
  }

  absl::Status SaveState(AlgorithmState* out) const override {
    *out = AlgorithmState();
    PutScalar(out, "fedfix.resolved", resolved_ ? 1 : 0);
    PutScalar(out, "fedfix.delta", delta_);
    PutScalar(out, "fedfix.origin", origin_);
    PutScalar(out, "fedfix.window", static_cast<double>(window_));
    PutScalar(out, "fedfix.restart_time", restart_time_);
    PutScalar(out, "fedfix.boundary_reached", boundary_reached_ ? 1 : 0);
    PutUpdates(out, "fedfix.pending", pending_);
    return absl::OkStatus();
  }

  absl::Status LoadState(const AlgorithmState& in) override {
    absl::StatusOr<uint64_t> resolved = GetCount(in, "fedfix.resolved");
    absl::StatusOr<double> delta = GetScalar(in, "fedfix.delta");
    absl::StatusOr<double> origin = GetScalar(in, "fedfix.origin");
    absl::StatusOr<uint64_t> window = GetCount(in, "fedfix.window");
    absl::StatusOr<double> restart = GetScalar(in, "fedfix.restart_time");
    absl::StatusOr<uint64_t> reached = GetCount(in, "fedfix.boundary_reached");
    absl::StatusOr<std::vector<ClientUpdate>> pending =
        GetUpdates(in, "fedfix.pending", num_params_);
    for (const absl::Status& s :
         {resolved.status(), delta.status(), origin.status(), window.status(), restart.status(),
          reached.status(), pending.status()}) {
      if (!s.ok()) return s;
    }
    if (*resolved > 1 || *reached > 1 ||
        (*resolved == 1 && !(*delta > 0 && std::isfinite(*delta))) || !std::isfinite(*origin) ||
        !std::isfinite(*restart)) {
      return absl::InvalidArgumentError("fedfix: inconsistent window state in checkpoint");
    }
    resolved_ = *resolved == 1;
    delta_ = *delta;
    origin_ = *origin;
    window_ = *window;
    restart_time_ = *restart;
    boundary_reached_ = *reached == 1;
    pending_ = *std::move(pending);
    return absl::OkStatus();
  }

 private:
  // The end of window n: origin + (n+1) Delta, multiplied rather than summed so
  // that boundaries do not drift over thousands of windows.
  VirtualTime Boundary() const { return origin_ + static_cast<double>(window_ + 1) * delta_; }

  absl::Status Resolve(const FleetView& fleet) {
    resolved_ = true;
    origin_ = fleet.now();
    restart_time_ = fleet.now();
    if (delta_s_ > 0) {
      delta_ = delta_s_;
      return absl::OkStatus();
    }
    double slowest = 0;
    for (ClientId i = 0; i < fleet.num_clients(); ++i) {
      slowest = std::max(slowest, fleet.client(i).expected_duration);
    }
    delta_ = delta_fraction_ * slowest;
    if (!(delta_ > 0) || !std::isfinite(delta_)) {
      resolved_ = false;
      return absl::FailedPreconditionError(
          absl::StrCat("fedfix.delta_fraction: the slowest client's expected duration is ", slowest,
                       ", so Delta = ", delta_, "; set fedfix.delta_s or give clients durations"));
    }
    return absl::OkStatus();
  }

  const double delta_s_;         // > 0 when set
  const double delta_fraction_;  // > 0 when set
  const double server_lr_;
  const uint32_t concurrency_;
  const bool uniform_;  // p_i = 1/N, else the engine's n_i / sum n
  const size_t num_params_;

  bool resolved_ = false;
  double delta_ = 0;
  VirtualTime origin_ = 0;
  uint64_t window_ = 0;                // windows closed so far
  VirtualTime restart_time_ = -1;      // Select dispatches only at this time
  bool boundary_reached_ = false;      // the timer of Boundary() fired
  std::vector<ClientUpdate> pending_;  // accepted, not yet aggregated
};

}  // namespace

void ValidateFedFix(const config::Algorithm& config, const RuleCheckContext& context,
                    ProblemList* problems) {
  const config::FedFix& a = config.fedfix();
  switch (a.window_case()) {
    case config::FedFix::kDeltaS:
      CheckPositive(a.delta_s(), "algorithm.fedfix.delta_s",
                    "it is the window length in virtual seconds", problems);
      break;
    case config::FedFix::kDeltaFraction:
      CheckPositive(a.delta_fraction(), "algorithm.fedfix.delta_fraction",
                    "it is a fraction of the slowest client's expected task time, e.g. 0.5",
                    problems);
      break;
    case config::FedFix::WINDOW_NOT_SET:
      problems->Add("algorithm.fedfix",
                    "has no window; set exactly one of delta_s (seconds) or delta_fraction "
                    "(of the slowest client's expected task time), e.g. delta_fraction: 0.5");
      break;
  }
  CheckPositive(a.server_lr(), "algorithm.fedfix.server_lr", "1.0 is the paper's default",
                problems);
  CheckConcurrency(a.concurrency(), context.num_clients, true, "algorithm.fedfix.concurrency",
                   problems);
  if (a.weighting() != config::EXAMPLES && a.weighting() != config::UNIFORM) {
    problems->Add("algorithm.fedfix.weighting",
                  "is unspecified; use UNIFORM (p_i = 1/N, the paper's) or EXAMPLES "
                  "(p_i = n_i / sum n)");
  }
}

absl::StatusOr<std::unique_ptr<Algorithm>> NewFedFix(const config::Algorithm& config,
                                                     const AlgorithmContext& context) {
  if (config.rule_case() != config::Algorithm::kFedfix) {
    return absl::InvalidArgumentError("NewFedFix: algorithm.fedfix is not set");
  }
  if (absl::Status s = ValidateInFactory(&ValidateFedFix, config, context); !s.ok()) return s;
  return std::make_unique<FedFix>(config.fedfix(), context);
}

}  // namespace fedsim
