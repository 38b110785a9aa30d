// This file's arithmetic must give the same bits whatever the build's flags
// (see the header): it is compiled with -ffp-contract=off (ml/CMakeLists.txt)
// and takes exp and log from ml/fixed_math.h, included first into a
// namespace of this file's own, so that no out-of-line copy of those inline
// functions is shared with a file compiled with other flags (the hazard
// ml/variant_namespace.h describes).
#define FEDSIM_NUMERIC_NS trades_math
#include "ml/fixed_math.h"
#undef FEDSIM_NUMERIC_NS

#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ml/trades.h"

namespace fedsim {
namespace {

// One row of k logits as log-probabilities and probabilities, in double:
// logp[j] = (l_j - m) - log sum_i e^(l_i - m) with m the row's maximum.
void Softmax(const float* l, int k, double* logp, double* p) {
  float m = l[0];
  for (int j = 1; j < k; ++j) m = l[j] > m ? l[j] : m;
  double sum = 0.0;
  for (int j = 0; j < k; ++j) {
    // The difference in double (exact unless the two are ~2^29 apart in
    // magnitude), rounded once, to the float exp's argument.
    const double d = static_cast<double>(l[j]) - static_cast<double>(m);
    logp[j] = d;
    p[j] = static_cast<double>(FixedExpF(static_cast<float>(d)));
    sum += p[j];
  }
  const double log_sum = FixedLog(sum);
  for (int j = 0; j < k; ++j) {
    logp[j] -= log_sum;
    p[j] /= sum;
  }
}

// Row buffers for the loops below.
struct Rows {
  explicit Rows(int k) : logp(k), p(k), logq(k), q(k) {}
  std::vector<double> logp, p, logq, q;
};

// KL(p || q) = sum_j p_j (log p_j - log q_j), in index order.
double Kl(const Rows& r, int k) {
  double kl = 0.0;
  for (int j = 0; j < k; ++j) kl += r.p[j] * (r.logp[j] - r.logq[j]);
  return kl;
}

// The attack's loss: 1/n sum_i KL(p_i || q_i) with the clean p_i fixed
// (set by SetTarget), as a function of the attacked rows' logits.
class KlToTarget final : public LogitLoss {
 public:
  void SetTarget(const float* clean_logits, int n, int k) {
    logp_.resize(static_cast<size_t>(n) * k);
    p_.resize(static_cast<size_t>(n) * k);
    for (int i = 0; i < n; ++i) {
      const size_t at = static_cast<size_t>(i) * k;
      Softmax(clean_logits + at, k, logp_.data() + at, p_.data() + at);
    }
  }

  double Compute(std::span<const float> logits, const BatchView& batch, int k,
                 std::span<float> dlogits) override {
    const int n = batch.n;
    Rows r(k);
    double total = 0.0;
    for (int i = 0; i < n; ++i) {
      const size_t at = static_cast<size_t>(i) * k;
      std::memcpy(r.logp.data(), logp_.data() + at, sizeof(double) * k);
      std::memcpy(r.p.data(), p_.data() + at, sizeof(double) * k);
      Softmax(logits.data() + at, k, r.logq.data(), r.q.data());
      total += Kl(r, k);
      for (int j = 0; j < k; ++j) dlogits[at + j] = static_cast<float>((r.q[j] - r.p[j]) / n);
    }
    return total / n;
  }

 private:
  std::vector<double> logp_, p_;  // n x k, of the clean rows
};

// The objective's loss on the 2n rows [x; x']: TradesLoss of the halves.
class PairLoss final : public LogitLoss {
 public:
  explicit PairLoss(double beta) : beta_(beta) {}
  double Compute(std::span<const float> logits, const BatchView& batch, int k,
                 std::span<float> dlogits) override {
    const int n = batch.n / 2;
    const size_t half = static_cast<size_t>(n) * k;
    return TradesLoss(logits.data(), logits.data() + half, batch.y, n, k, beta_, dlogits.data(),
                      dlogits.data() + half);
  }

 private:
  const double beta_;
};

class TradesObjective final : public Objective {
 public:
  TradesObjective(const TradesOptions& options, std::unique_ptr<Attack> attack)
      : options_(options), attack_(std::move(attack)), pair_loss_(options.beta) {}

  std::string Name() const override { return TradesName(options_); }
  int passes() const override { return TradesPasses(options_); }

  float Gradient(Model& model, std::span<const float> params, const BatchView& batch, Rng& rng,
                 std::span<float> grad) override {
    const int n = batch.n;
    const int k = model.config().num_classes;
    const size_t dim = static_cast<size_t>(model.config().input_dim());
    const size_t rows = static_cast<size_t>(n) * dim;

    // The attack's target: the clean predictions at params.
    clean_logits_.resize(static_cast<size_t>(n) * k);
    model.Logits(params, batch, clean_logits_);
    kl_.SetTarget(clean_logits_.data(), n, k);

    // [x; x'] with labels [y; y]: x' is attacked straight into the second half.
    pair_x_.resize(2 * rows);
    pair_y_.resize(2 * static_cast<size_t>(n));
    std::memcpy(pair_x_.data(), batch.x, sizeof(float) * rows);
    std::memcpy(pair_y_.data(), batch.y, sizeof(int32_t) * n);
    std::memcpy(pair_y_.data() + n, batch.y, sizeof(int32_t) * n);
    attack_->PerturbLoss(model, params, batch, kl_, rng,
                         std::span<float>(pair_x_.data() + rows, rows));

    const BatchView pair{pair_x_.data(), pair_y_.data(), 2 * n};
    return model.ForwardBackwardLoss(params, pair, pair_loss_, grad);
  }

 private:
  const TradesOptions options_;
  std::unique_ptr<Attack> attack_;
  KlToTarget kl_;
  PairLoss pair_loss_;
  std::vector<float> clean_logits_;
  std::vector<float> pair_x_;
  std::vector<int32_t> pair_y_;
};

}  // namespace

std::unique_ptr<LogitLoss> NewTradesPairLoss(double beta) {
  return std::make_unique<PairLoss>(beta);
}

std::string TradesName(const TradesOptions& o) {
  return absl::StrCat("trades(beta=", o.beta, ", ", AttackName(o.attack), ")");
}

absl::Status ValidateTradesOptions(const TradesOptions& o) {
  if (absl::Status s = ValidateAttackOptions(o.attack); !s.ok()) return s;
  if (!(o.beta >= 0) || !std::isfinite(o.beta)) {
    return absl::InvalidArgumentError(
        absl::StrCat("trades: beta must be finite and >= 0, got ", o.beta));
  }
  if (!o.attack.random_start) {
    return absl::InvalidArgumentError(
        "trades: the attack needs a random start (the KL term's gradient is zero at the clean "
        "input, so an attack started there never moves)");
  }
  return absl::OkStatus();
}

int TradesPasses(const TradesOptions& o) { return o.attack.steps + 2; }

absl::StatusOr<std::unique_ptr<Objective>> NewTradesObjective(const TradesOptions& options) {
  if (absl::Status s = ValidateTradesOptions(options); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Attack>> attack = NewAttack(options.attack);
  if (!attack.ok()) return attack.status();
  return std::unique_ptr<Objective>(new TradesObjective(options, *std::move(attack)));
}

double TradesLoss(const float* clean, const float* adv, const int32_t* labels, int n, int k,
                  double beta, float* dclean, float* dadv) {
  Rows r(k);
  double total = 0.0;
  for (int i = 0; i < n; ++i) {
    const size_t at = static_cast<size_t>(i) * k;
    Softmax(clean + at, k, r.logp.data(), r.p.data());
    Softmax(adv + at, k, r.logq.data(), r.q.data());
    const double kl = Kl(r, k);
    const int y = labels[i];
    total += -r.logp[y] + beta * kl;
    if (dclean != nullptr) {
      for (int j = 0; j < k; ++j) {
        const double ce = r.p[j] - (j == y ? 1.0 : 0.0);
        const double robust = r.p[j] * ((r.logp[j] - r.logq[j]) - kl);
        dclean[at + j] = static_cast<float>((ce + beta * robust) / n);
      }
    }
    if (dadv != nullptr) {
      for (int j = 0; j < k; ++j) dadv[at + j] = static_cast<float>(beta * (r.q[j] - r.p[j]) / n);
    }
  }
  return total / n;
}

}  // namespace fedsim
