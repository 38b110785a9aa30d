// FedBuff.
//
// Paper: J. Nguyen, K. Malik, H. Zhan, A. Yousefpour, M. Rabbat, M. Malek,
// D. Huba, "Federated Learning with Buffered Asynchronous Aggregation",
// AISTATS 2022, arXiv:2106.06639. Spec: ALGORITHMS.md section 3.
//
// Where we differ from the paper, and why:
//  - The paper's Algorithm 1 scales by S(s) and divides by K with uniform
//    client weights. We keep that as UNIFORM (the default) and add EXAMPLES,
//    x += eta sum(n_i S(s_i) delta_i) / sum(n_i), a buffer average over
//    examples for unequal client sizes (our choice, not FLSim's). The
//    denominator deliberately omits S(s_i): stale updates shrink the step
//    instead of being renormalized away.
//    Meta's FLSim (flsim/utils/async_trainer/async_weights.py and its
//    async_example_weights.py, async_staleness_weights.py) does otherwise:
//    its asynchronous reducer adds a weighted SUM of the buffered deltas,
//    each weighted by an example weight w(n_i) / w(avg_num_examples) (equal
//    by default; linear gives n_i / a configured average size, not / sum n)
//    times a staleness weight S(s) / S(avg_staleness) (constant by default;
//    avg_staleness is a configured number, default 1), so with the polynomial
//    S an update of average staleness has weight 1. We do not offer that
//    normalization: with equal example weights it is UNIFORM up to the
//    constant factor K / S(avg_staleness), which server_lr absorbs.
//  - Updates staler than max_staleness are dropped (FLSim's option; the
//    paper's analysis assumes bounded staleness but does not drop).
//  - A partial buffer is flushed at the end of the run (FLSim) when
//    flush_at_end, divided by the k updates it holds, not by K.
//  - Server momentum is heavy-ball on the committed step: m = beta m + step,
//    x += m (FedAvgM style; the paper mentions server optimizers generally).
//    With momentum, AppliedUpdate::weight reports the immediate coefficient;
//    the update keeps acting through m afterwards.
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

class FedBuff final : public Algorithm {
 public:
  FedBuff(const config::FedBuff& c, StalenessFn staleness, const AlgorithmContext& context)
      : buffer_size_(c.buffer_size()),
        concurrency_(c.concurrency()),
        server_lr_(c.server_lr()),
        staleness_(staleness),
        max_staleness_(c.max_staleness()),
        momentum_(c.server_momentum()),
        flush_at_end_(c.flush_at_end()),
        examples_(c.weighting() == config::EXAMPLES),
        num_params_(context.num_params) {}

  std::string_view Name() const override { return "fedbuff"; }

  absl::StatusOr<std::vector<Dispatch>> Select(const FleetView& fleet, Rng& rng) override {
    return TopUp(fleet, rng, concurrency_);
  }

  absl::Status Accept(const FleetView& fleet, ClientUpdate update) override {
    (void)fleet;
    if (max_staleness_ > 0 && update.staleness > max_staleness_) {
      return absl::FailedPreconditionError(
          absl::StrCat("too stale: task ", update.task_id, " has staleness ", update.staleness,
                       " > fedbuff.max_staleness ", max_staleness_));
    }
    absl::Status s = CheckDelta(update, num_params_);
    if (!s.ok()) return s;
    if (buffer_.empty()) buffer_.assign(update.delta.size(), 0.0f);
    if (update.delta.size() != buffer_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("fedbuff: update of task ", update.task_id,
                                                     " has ", update.delta.size(),
                                                     " values, the buffer ", buffer_.size()));
    }
    const double n = examples_ ? static_cast<double>(update.num_examples) : 1.0;
    const double coef = staleness_(update.staleness) * n;
    AddWeighted(buffer_, coef, update.delta);
    sum_weights_ += n;
    entries_.push_back(Entry{update.task_id, update.client, update.staleness, coef});
    return absl::OkStatus();
  }

  bool ReadyToCommit(const FleetView& fleet) const override {
    (void)fleet;
    return entries_.size() >= buffer_size_;
  }

  absl::StatusOr<CommitResult> Commit(const FleetView& fleet, ModelBank& models) override {
    const std::span<float> global = models.global();
    (void)fleet;
    return Apply(global);
  }

  absl::StatusOr<std::optional<CommitResult>> Finish(const FleetView& fleet,
                                                     ModelBank& models) override {
    (void)fleet;
    if (!flush_at_end_ || entries_.empty()) return std::nullopt;
    absl::StatusOr<CommitResult> r = Apply(models.global());
    if (!r.ok()) return r.status();
    return std::optional<CommitResult>(*std::move(r));
  }

  absl::Status SaveState(AlgorithmState* out) const override {
    *out = AlgorithmState();
    std::vector<double> meta;
    for (const Entry& e : entries_) {
      meta.insert(meta.end(), {static_cast<double>(e.task), static_cast<double>(e.client),
                               static_cast<double>(e.staleness), e.coef});
    }
    PutScalars(out, "fedbuff.entries", std::move(meta));
    PutScalar(out, "fedbuff.sum_weights", sum_weights_);
    PutTensor(out, "fedbuff.buffer", buffer_);
    PutTensor(out, "fedbuff.momentum", velocity_);
    return absl::OkStatus();
  }

  absl::Status LoadState(const AlgorithmState& in) override {
    absl::StatusOr<std::vector<double>> meta = GetScalars(in, "fedbuff.entries");
    absl::StatusOr<double> sum = GetScalar(in, "fedbuff.sum_weights");
    absl::StatusOr<std::vector<float>> buffer = GetTensor(in, "fedbuff.buffer", 0);
    absl::StatusOr<std::vector<float>> velocity = GetTensor(in, "fedbuff.momentum", 0);
    for (const absl::Status& s :
         {meta.status(), sum.status(), buffer.status(), velocity.status()}) {
      if (!s.ok()) return s;
    }
    auto bad_size = [&](const std::vector<float>& v) {
      return !v.empty() && num_params_ != 0 && v.size() != num_params_;
    };
    if (meta->size() % 4 != 0 || bad_size(*buffer) || bad_size(*velocity) ||
        (buffer->empty() && !meta->empty()) || !(*sum >= 0)) {
      return absl::InvalidArgumentError("fedbuff: malformed buffer in checkpoint");
    }
    std::vector<Entry> entries;
    for (size_t i = 0; i < meta->size(); i += 4) {
      const double* m = meta->data() + i;
      for (int k = 0; k < 3; ++k) {
        if (!(m[k] >= 0) || m[k] != std::floor(m[k])) {
          return absl::InvalidArgumentError("fedbuff: malformed buffer entry in checkpoint");
        }
      }
      entries.push_back(Entry{static_cast<TaskId>(m[0]), static_cast<ClientId>(m[1]),
                              static_cast<uint64_t>(m[2]), m[3]});
    }
    entries_ = std::move(entries);
    sum_weights_ = *sum;
    buffer_ = *std::move(buffer);
    velocity_ = *std::move(velocity);
    return absl::OkStatus();
  }

 private:
  struct Entry {
    TaskId task;
    ClientId client;
    uint64_t staleness;
    double coef;  // S(s) w_i, as added to the buffer
  };

  // Folds the buffer into global (dividing by the k updates or sum n_i it
  // holds) and clears it. Also serves the end-of-run flush.
  absl::StatusOr<CommitResult> Apply(std::span<float> global) {
    CommitResult result;
    if (entries_.empty()) return result;
    if (buffer_.size() != global.size()) {
      return absl::InvalidArgumentError(absl::StrCat("fedbuff: buffer has ", buffer_.size(),
                                                     " values, the model ", global.size()));
    }
    // UNIFORM: sum_weights_ = k. EXAMPLES with all n_i = 0: nothing to apply.
    const double scale = sum_weights_ > 0 ? server_lr_ / sum_weights_ : 0.0;
    if (momentum_ > 0) {
      if (velocity_.empty()) velocity_.assign(global.size(), 0.0f);
      // m = beta m + scale buf; x += m.
      for (size_t j = 0; j < global.size(); ++j) {
        velocity_[j] = static_cast<float>(momentum_ * velocity_[j] + scale * buffer_[j]);
      }
      AddWeighted(global, 1.0, velocity_);
    } else {
      AddWeighted(global, scale, buffer_);
    }
    for (const Entry& e : entries_) {
      result.applied.push_back(AppliedUpdate{.task_id = e.task,
                                             .client = e.client,
                                             .staleness = e.staleness,
                                             .weight = scale * e.coef});
    }
    entries_.clear();
    sum_weights_ = 0;
    std::fill(buffer_.begin(), buffer_.end(), 0.0f);
    return result;
  }

  const uint32_t buffer_size_;
  const uint32_t concurrency_;
  const double server_lr_;
  const StalenessFn staleness_;
  const uint32_t max_staleness_;
  const double momentum_;
  const bool flush_at_end_;
  const bool examples_;
  const size_t num_params_;

  std::vector<Entry> entries_;   // the k buffered updates, arrival order
  double sum_weights_ = 0;       // k (UNIFORM) or sum n_i (EXAMPLES)
  std::vector<float> buffer_;    // sum S(s_i) w_i delta_i; sized on first Accept
  std::vector<float> velocity_;  // server momentum m; sized on first use
};

}  // namespace

void ValidateFedBuff(const config::Algorithm& config, const RuleCheckContext& context,
                     ProblemList* problems) {
  const config::FedBuff& a = config.fedbuff();
  if (a.buffer_size() == 0) {
    problems->Add("algorithm.fedbuff.buffer_size", "must be >= 1, got 0; the paper uses 10");
  } else if (a.concurrency() > 0 && a.buffer_size() > a.concurrency()) {
    problems->Add("algorithm.fedbuff.buffer_size",
                  absl::StrCat(a.buffer_size(), " is larger than concurrency ", a.concurrency(),
                               ": at most concurrency updates are in flight at once, so the "
                               "buffer can never fill and no commit would happen; lower "
                               "buffer_size or raise concurrency"));
  }
  CheckConcurrency(a.concurrency(), context.num_clients, false, "algorithm.fedbuff.concurrency",
                   problems);
  CheckPositive(a.server_lr(), "algorithm.fedbuff.server_lr", "1.0 is the paper's default",
                problems);
  if (!(a.server_momentum() >= 0 && a.server_momentum() < 1)) {
    problems->Add("algorithm.fedbuff.server_momentum",
                  absl::StrCat(NumberText(a.server_momentum()),
                               " is outside [0, 1); use 0 for off or e.g. 0.9"));
  }
  if (a.weighting() != config::EXAMPLES && a.weighting() != config::UNIFORM) {
    problems->Add("algorithm.fedbuff.weighting", "is unspecified; use UNIFORM or EXAMPLES");
  }
  CheckStaleness(a.staleness(), "algorithm.fedbuff.staleness", problems);
}

void FillFedBuffDefaults(config::Algorithm* config) {
  config::Staleness* s = config->mutable_fedbuff()->mutable_staleness();
  if (s->kind_case() == config::Staleness::KIND_NOT_SET) s->mutable_polynomial();
}

absl::StatusOr<std::unique_ptr<Algorithm>> NewFedBuff(const config::Algorithm& config,
                                                      const AlgorithmContext& context) {
  if (config.rule_case() != config::Algorithm::kFedbuff) {
    return absl::InvalidArgumentError("NewFedBuff: algorithm.fedbuff is not set");
  }
  if (absl::Status s = ValidateInFactory(&ValidateFedBuff, config, context); !s.ok()) return s;
  const config::FedBuff& c = config.fedbuff();
  absl::StatusOr<StalenessFn> staleness =
      StalenessFn::FromConfig(c.staleness(), "algorithm.fedbuff.staleness");
  if (!staleness.ok()) return staleness.status();
  return std::make_unique<FedBuff>(c, *staleness, context);
}

}  // namespace fedsim
