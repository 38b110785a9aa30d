// FedOpt: server optimizers on the round's mean delta (FedAdam, FedYogi,
// FedAdagrad) and FedAvgM's server momentum.
//
// Paper: S. J. Reddi, Z. Charles, M. Zaheer, Z. Garrett, K. Rush, J. Konecny,
// S. Kumar, H. B. McMahan, "Adaptive Federated Optimization", ICLR 2021,
// arXiv:2003.00295 (Algorithm 2). FedAvgM: T.-M. H. Hsu, H. Qi, M. Brown,
// "Measuring the Effects of Non-Identical Data Distribution for Federated
// Visual Classification", arXiv:1909.06335. Spec: ALGORITHMS.md section 9.
//
// One round, as in synchronous FedAvg (rounds, selection and the weighted
// mean are composed from rule_util.h and aggregate.h, not inherited):
//   Delta = sum_i w_i delta_i,  w_i = n_i / sum n (EXAMPLES) or 1/|S| (UNIFORM),
//   summed exactly as the updates arrive (algorithms/round_sum.h)
//   ADAM, YOGI, ADAGRAD:  m = beta1 m + (1 - beta1) Delta
//     ADAGRAD  v = v + Delta^2
//     ADAM     v = beta2 v + (1 - beta2) Delta^2
//     YOGI     v = v - (1 - beta2) Delta^2 sign(v - Delta^2)
//     x += server_lr m / (sqrt(v) + tau)              (per coordinate)
//   MOMENTUM (FedAvgM):   m = beta1 m + Delta;  x += server_lr m
//
// Where we differ from the paper, and why:
//  - m and v start at 0 (the paper asks v_{-1} >= tau^2; Flower and FedML
//    start at 0, and tau already keeps the first step finite). No bias
//    correction, as in the paper's Algorithm 2.
//  - Rounds are FedAvg's without deadline or over-selection: the round ends
//    when every dispatched client has reported or been lost. A round with no
//    update leaves the model and m, v unchanged (the paper has no such round).
//  - The coordinate arithmetic is in double, stored as float32, so results
//    are bit-reproducible across worker counts like every other rule.
//  - AppliedUpdate::weight reports server_lr * w_i, the update's share of
//    Delta scaled by the learning rate; the optimizer then rescales Delta per
//    coordinate (and momentum keeps applying it in later rounds).
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

using Optimizer = config::FedOpt::Optimizer;

bool ValidOptimizer(Optimizer o) {
  return o == config::FedOpt::ADAM || o == config::FedOpt::YOGI || o == config::FedOpt::ADAGRAD ||
         o == config::FedOpt::MOMENTUM;
}

// server_lr's default depends on the optimizer (see scenario.proto).
double ServerLr(const config::FedOpt& c) {
  if (c.has_server_lr()) return c.server_lr();
  return c.optimizer() == config::FedOpt::MOMENTUM ? 1.0 : 0.01;
}

class FedOpt final : public Algorithm {
 public:
  FedOpt(const config::FedOpt& c, const AlgorithmContext& context)
      : optimizer_(c.optimizer()),
        server_lr_(ServerLr(c)),
        beta1_(c.beta1()),
        beta2_(c.beta2()),
        tau_(c.tau()),
        clients_per_round_(c.clients_per_round()),
        num_params_(context.num_params),
        round_(c.weighting() == config::UNIFORM, context.num_params) {}

  std::string_view Name() const override { return "fedopt"; }

  absl::Status Start(const FleetView& fleet, ModelBank& models) override {
    (void)models;
    round_.SetUnitFromFleet(fleet);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<Dispatch>> Select(const FleetView& fleet, Rng& rng) override {
    if (roster_.active()) return std::vector<Dispatch>();
    std::vector<Dispatch> cohort = SampleIdle(fleet, rng, clients_per_round_);
    if (cohort.empty()) return cohort;  // nobody idle: wait for an event
    roster_.Begin(fleet.version(), cohort);
    // Every task of the round will be accepted: workers may pre-aggregate.
    for (Dispatch& d : cohort) d.fold_weight = round_.WeightOf(fleet.client(d.client).num_examples);
    return cohort;
  }

  absl::Status Accept(const FleetView& fleet, ClientUpdate update) override {
    (void)fleet;
    if (absl::Status s = roster_.Admit(update); !s.ok()) return s;
    return round_.Add(update);
  }

  void OnTaskLost(const FleetView& fleet, TaskId task, ClientId client) override {
    (void)fleet;
    (void)task;
    roster_.Forget(client);
  }

  bool ReadyToCommit(const FleetView& fleet) const override {
    (void)fleet;
    return roster_.active() && roster_.all_reported();
  }

  absl::StatusOr<CommitResult> Commit(const FleetView& fleet, ModelBank& models) override {
    (void)fleet;
    const std::span<float> global = models.global();
    CommitResult result;
    if (absl::Status s = round_.CheckComplete("fedopt"); !s.ok()) return s;
    if (!round_.empty()) {
      if (round_.size() != global.size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "fedopt: the round's sum has ", round_.size(), " values, the model ", global.size()));
      }
      std::vector<float> mean(global.size());
      round_.MeanInto(mean);
      Step(mean, global);
      result.applied = round_.Applied(server_lr_);
    }
    roster_.End();
    round_.Clear();
    return result;
  }

  absl::Status SaveState(AlgorithmState* out) const override {
    *out = AlgorithmState();
    roster_.Save(out, "fedopt");
    round_.Save(out, "fedopt");
    PutTensor(out, "fedopt.m", m_);
    PutTensor(out, "fedopt.v", v_);
    return absl::OkStatus();
  }

  absl::Status LoadState(const AlgorithmState& in) override {
    absl::StatusOr<std::vector<float>> m = GetTensor(in, "fedopt.m", 0);
    absl::StatusOr<std::vector<float>> v = GetTensor(in, "fedopt.v", 0);
    for (const absl::Status& s : {m.status(), v.status()}) {
      if (!s.ok()) return s;
    }
    RoundRoster roster;
    if (absl::Status s = roster.Load(in, "fedopt"); !s.ok()) return s;
    RoundSum round = round_;
    if (absl::Status s = round.Load(in, "fedopt"); !s.ok()) return s;
    // m is empty before the first commit; v is empty for MOMENTUM, else m's size.
    const bool momentum = optimizer_ == config::FedOpt::MOMENTUM;
    if ((num_params_ != 0 && !m->empty() && m->size() != num_params_) ||
        (momentum ? !v->empty() : v->size() != m->size())) {
      return absl::InvalidArgumentError("fedopt: inconsistent state in checkpoint");
    }
    roster_ = std::move(roster);
    round_ = std::move(round);
    m_ = *std::move(m);
    v_ = *std::move(v);
    return absl::OkStatus();
  }

 private:
  // One optimizer step on `global` with pseudo-gradient `delta`.
  void Step(std::span<const float> delta, std::span<float> global) {
    const size_t n = global.size();
    if (m_.empty()) m_.assign(n, 0.0f);
    if (optimizer_ == config::FedOpt::MOMENTUM) {
      for (size_t j = 0; j < n; ++j) {
        m_[j] = static_cast<float>(beta1_ * m_[j] + static_cast<double>(delta[j]));
      }
      AddWeighted(global, server_lr_, m_);
      return;
    }
    if (v_.empty()) v_.assign(n, 0.0f);
    for (size_t j = 0; j < n; ++j) {
      const double d = delta[j];
      const double d2 = d * d;
      const double m = beta1_ * m_[j] + (1.0 - beta1_) * d;
      double v = v_[j];
      switch (optimizer_) {
        case config::FedOpt::ADAGRAD:
          v = v + d2;
          break;
        case config::FedOpt::ADAM:
          v = beta2_ * v + (1.0 - beta2_) * d2;
          break;
        case config::FedOpt::YOGI: {
          const double diff = v - d2;
          const double sign = diff > 0 ? 1.0 : (diff < 0 ? -1.0 : 0.0);
          v = v - (1.0 - beta2_) * d2 * sign;
          break;
        }
        default:
          break;  // refused by ValidateFedOpt
      }
      m_[j] = static_cast<float>(m);
      v_[j] = static_cast<float>(v);
      // The step uses the stored (float) moments, so a checkpoint resumes
      // exactly.
      const double mf = m_[j], vf = v_[j];
      global[j] = static_cast<float>(static_cast<double>(global[j]) +
                                     server_lr_ * mf / (std::sqrt(vf) + tau_));
    }
  }

  // Configuration.
  const Optimizer optimizer_;
  const double server_lr_;
  const double beta1_;
  const double beta2_;
  const double tau_;
  const uint32_t clients_per_round_;
  const size_t num_params_;

  // The round in progress.
  RoundRoster roster_;
  RoundSum round_;  // the round's updates, folded as they arrive
  // Optimizer state; sized at the first commit with updates.
  std::vector<float> m_;
  std::vector<float> v_;  // empty for MOMENTUM
};

}  // namespace

void ValidateFedOpt(const config::Algorithm& config, const RuleCheckContext& context,
                    ProblemList* problems) {
  const config::FedOpt& c = config.fedopt();
  if (!ValidOptimizer(c.optimizer())) {
    problems->Add("algorithm.fedopt.optimizer",
                  "is unspecified; use ADAM, YOGI, ADAGRAD or MOMENTUM");
  }
  CheckPositive(ServerLr(c), "algorithm.fedopt.server_lr",
                "Reddi et al. use about 0.01 for ADAM and YOGI, 1.0 suits MOMENTUM", problems);
  if (!(c.beta1() >= 0 && c.beta1() < 1)) {
    problems->Add("algorithm.fedopt.beta1",
                  absl::StrCat(NumberText(c.beta1()),
                               " is outside [0, 1); it is the decay of the first moment "
                               "(the momentum), e.g. 0.9"));
  }
  if (!(c.beta2() >= 0 && c.beta2() < 1)) {
    problems->Add("algorithm.fedopt.beta2",
                  absl::StrCat(NumberText(c.beta2()),
                               " is outside [0, 1); it is the decay of the second moment, "
                               "e.g. 0.99"));
  }
  CheckPositive(c.tau(), "algorithm.fedopt.tau",
                "it keeps the step finite where the second moment is 0, e.g. 1e-3", problems);
  const uint32_t n = context.num_clients;
  const uint32_t m = c.clients_per_round();
  if (m == 0 || (n > 0 && m > n)) {
    problems->Add("algorithm.fedopt.clients_per_round",
                  n > 0 ? absl::StrCat(m, " is outside [1, num_clients = ", n,
                                       "]; pick a cohort size in that range")
                        : absl::StrCat("must be >= 1, got ", m, "; pick a cohort size"));
  }
  if (c.weighting() != config::EXAMPLES && c.weighting() != config::UNIFORM) {
    problems->Add("algorithm.fedopt.weighting", "is unspecified; use EXAMPLES or UNIFORM");
  }
}

void FillFedOptDefaults(config::Algorithm* config) {
  config::FedOpt* c = config->mutable_fedopt();
  if (!c->has_server_lr()) c->set_server_lr(ServerLr(*c));
}

uint64_t FedOptStateBytes(const config::Algorithm& config, uint64_t num_clients,
                          uint64_t num_params) {
  (void)num_clients;
  const bool momentum = config.fedopt().optimizer() == config::FedOpt::MOMENTUM;
  return ModelBytes(momentum ? 1 : 2, num_params);
}

absl::StatusOr<std::unique_ptr<Algorithm>> NewFedOpt(const config::Algorithm& config,
                                                     const AlgorithmContext& context) {
  if (config.rule_case() != config::Algorithm::kFedopt) {
    return absl::InvalidArgumentError("NewFedOpt: algorithm.fedopt is not set");
  }
  if (absl::Status s = ValidateInFactory(&ValidateFedOpt, config, context); !s.ok()) return s;
  return std::make_unique<FedOpt>(config.fedopt(), context);
}

}  // namespace fedsim
