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
//
// Boundary ties. A window n covers arrival_time <= boundary_n (inclusive).
// We rely on the engine's contract that an arrival at exactly a boundary whose
// completion was queued before the boundary timer is processed before that
// timer (tasks are dispatched, and their completions queued, before the timer
// is (re)scheduled after the event), and that Select ends every event. So that
// *every* such arrival lands in the window it closes, ReadyToCommit stays
// false at now == boundary while the current event is an arrival (Accept was
// called and Select has not yet closed the event); the timer event at the same
// time then commits. Commit aggregates exactly the accepted updates with
// arrival_time <= the boundary it closes. An arrival at the boundary processed
// after the timer (other order) lands in the next window, deterministically,
// and its client still restarts at the boundary, because Select dispatches at
// any call whose time equals the last boundary Commit's time.
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
        num_params_(context.num_params) {}

  std::string_view Name() const override { return "fedfix"; }

  std::vector<Dispatch> Select(const FleetView& fleet, Rng& rng) override {
    if (!resolved_) Resolve(fleet);
    accepted_this_event_ = false;
    if (!init_error_.ok() || fleet.now() != restart_time_) return {};
    return TopUp(fleet, rng, concurrency_);
  }

  absl::Status Accept(const FleetView& fleet, ClientUpdate update) override {
    if (!resolved_) Resolve(fleet);
    if (!init_error_.ok()) return init_error_;
    absl::Status s = CheckDelta(update, num_params_);
    if (!s.ok()) return s;
    accepted_this_event_ = true;
    update.metrics.clear();
    pending_.push_back(std::move(update));
    return absl::OkStatus();
  }

  bool ReadyToCommit(const FleetView& fleet) const override {
    if (!init_error_.ok()) return true;  // so that Commit reports it
    if (!resolved_) return false;
    const VirtualTime boundary = Boundary();
    // At exactly the boundary, wait for the timer event (see the file comment).
    return fleet.now() > boundary || (fleet.now() == boundary && !accepted_this_event_);
  }

  std::optional<VirtualTime> NextDeadline() const override {
    if (!resolved_ || !init_error_.ok()) return std::nullopt;
    return Boundary();
  }

  absl::StatusOr<CommitResult> Commit(const FleetView& fleet, std::span<float> global) override {
    if (!init_error_.ok()) return init_error_;
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
      const double coef = server_lr_ * windows * info.importance;
      AddWeighted(global, coef, u.delta);
      result.applied.push_back(AppliedUpdate{
          .task_id = u.task_id, .client = u.client, .staleness = u.staleness, .weight = coef});
    }
    pending_ = std::move(later);
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
    PutScalar(out, "fedfix.accepted_this_event", accepted_this_event_ ? 1 : 0);
    PutUpdates(out, "fedfix.pending", pending_);
    return absl::OkStatus();
  }

  absl::Status LoadState(const AlgorithmState& in) override {
    absl::StatusOr<uint64_t> resolved = GetCount(in, "fedfix.resolved");
    absl::StatusOr<double> delta = GetScalar(in, "fedfix.delta");
    absl::StatusOr<double> origin = GetScalar(in, "fedfix.origin");
    absl::StatusOr<uint64_t> window = GetCount(in, "fedfix.window");
    absl::StatusOr<double> restart = GetScalar(in, "fedfix.restart_time");
    absl::StatusOr<uint64_t> accepted = GetCount(in, "fedfix.accepted_this_event");
    absl::StatusOr<std::vector<ClientUpdate>> pending =
        GetUpdates(in, "fedfix.pending", num_params_);
    for (const absl::Status& s :
         {resolved.status(), delta.status(), origin.status(), window.status(), restart.status(),
          accepted.status(), pending.status()}) {
      if (!s.ok()) return s;
    }
    if (*resolved > 1 || *accepted > 1 ||
        (*resolved == 1 && !(*delta > 0 && std::isfinite(*delta))) || !std::isfinite(*origin) ||
        !std::isfinite(*restart)) {
      return absl::InvalidArgumentError("fedfix: inconsistent window state in checkpoint");
    }
    resolved_ = *resolved == 1;
    delta_ = *delta;
    origin_ = *origin;
    window_ = *window;
    restart_time_ = *restart;
    accepted_this_event_ = *accepted == 1;
    pending_ = *std::move(pending);
    init_error_ = absl::OkStatus();
    return absl::OkStatus();
  }

 private:
  // The end of window n: origin + (n+1) Delta, multiplied rather than summed so
  // that boundaries do not drift over thousands of windows.
  VirtualTime Boundary() const { return origin_ + static_cast<double>(window_ + 1) * delta_; }

  void Resolve(const FleetView& fleet) {
    resolved_ = true;
    origin_ = fleet.now();
    restart_time_ = fleet.now();
    if (delta_s_ > 0) {
      delta_ = delta_s_;
      return;
    }
    double slowest = 0;
    for (ClientId i = 0; i < fleet.num_clients(); ++i) {
      slowest = std::max(slowest, fleet.client(i).expected_duration);
    }
    delta_ = delta_fraction_ * slowest;
    if (!(delta_ > 0) || !std::isfinite(delta_)) {
      init_error_ = absl::FailedPreconditionError(
          absl::StrCat("fedfix.delta_fraction: the slowest client's expected duration is ", slowest,
                       ", so Delta = ", delta_, "; set fedfix.delta_s or give clients durations"));
    }
  }

  const double delta_s_;         // > 0 when set
  const double delta_fraction_;  // > 0 when set
  const double server_lr_;
  const uint32_t concurrency_;
  const size_t num_params_;

  bool resolved_ = false;
  absl::Status init_error_;
  double delta_ = 0;
  VirtualTime origin_ = 0;
  uint64_t window_ = 0;                // windows closed so far
  VirtualTime restart_time_ = -1;      // Select dispatches only at this time
  bool accepted_this_event_ = false;   // Accept since the last Select
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
