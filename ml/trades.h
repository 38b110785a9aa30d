// TRADES (Zhang, Yu, Jiao, Xing, El Ghaoui, Jordan, "Theoretically
// Principled Trade-off between Robustness and Accuracy", ICML 2019, arXiv
// 1901.08573) as an Objective (ml/objective.h) for SGD or SAM.
//
// On a batch of n rows (x_i, y_i), with f the model's logits,
// p_i = softmax(f(x_i)) and q_i = softmax(f(x'_i)):
//
//   x'_i = the attack (ml/attack.h) of x_i ascending KL(p_i || q_i), with
//          p_i held fixed (the clean predictions are the target);
//   objective = 1/n sum_i [ CE(f(x_i), y_i) + beta * KL(p_i || q_i) ].
//
// The gradient flows through both p_i and q_i, as in the authors' code
// (github.com/yaodongyu/TRADES, trades.py), and not through x'_i (Danskin's
// theorem: x'_i is treated as a constant). It is computed in one
// forward-backward pass over the 2n rows [x; x'], whose logits a LogitLoss
// turns into d objective / d logits:
//
//   d/d f(x_i)  = (p_i - onehot(y_i)) / n + beta/n * p_i * (r_i - KL_i),
//                 r_i = log p_i - log q_i (elementwise), KL_i = <p_i, r_i>;
//   d/d f(x'_i) = beta/n * (q_i - p_i).
//
// beta = 0 is clean training on the mean cross-entropy (at the cost of the
// attack); larger beta trades clean accuracy for robustness (the paper uses
// 1 to 6; 6 for MNIST and CIFAR-10).
//
// Where we differ from the authors' code: the attack's random start is the
// configured attack's (uniform in the eps-ball), not x + 0.001 N(0, 1); a
// random start is required, since the KL term's gradient is zero at x' = x
// and an attack started there would never move.
//
// Cost per step: the attack's k forward-backward passes over n rows, plus
// the pass over 2n rows (2 passes), so passes() = k + 2; one forward pass of
// the clean rows (the attack's target, about a third of a pass) is not
// counted.
//
// Bits: the loss arithmetic runs outside the model's numeric copies
// (ml/numeric.h), so it is written to give the same bits whatever the
// build's flags or the host: fixed exp and log (ml/fixed_math.h), no
// contraction into fused multiply-adds (trades.cc is compiled with
// -ffp-contract=off), sums in a fixed order.
//
// Thread safety: an objective holds its attack's scratch and its buffers;
// one thread at a time. Deterministic given (params, batch, rng).
#ifndef FEDSIM_ML_TRADES_H_
#define FEDSIM_ML_TRADES_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ml/attack.h"
#include "ml/objective.h"

namespace fedsim {

struct TradesOptions {
  // Default: PGD-10, L-infinity, eps 0.1, step 0.01, random start, [0, 1]:
  // the inner maximization (of the KL term, not the cross-entropy).
  AttackOptions attack;
  // Default: 6 (Zhang et al. on MNIST and CIFAR-10). Weight of the KL term,
  // finite and >= 0.
  double beta = 6.0;
};

// "trades(beta=6, pgd(linf, eps=0.1, step=0.01, k=10, start=random))".
std::string TradesName(const TradesOptions& options);

// InvalidArgument as ValidateAttackOptions, unless beta is finite and >= 0,
// or when the attack has no random start (see the file comment).
absl::Status ValidateTradesOptions(const TradesOptions& options);

// Forward-backward passes one Gradient costs: attack.steps + 2.
int TradesPasses(const TradesOptions& options);

// InvalidArgument as ValidateTradesOptions.
absl::StatusOr<std::unique_ptr<Objective>> NewTradesObjective(const TradesOptions& options);

// The TRADES loss of n rows from their clean and attacked logits (n x k
// each, row-major): 1/n sum_i [ -log p_i[y_i] + beta KL(p_i || q_i) ].
// Writes d loss / d clean logits into dclean and d loss / d attacked logits
// into dadv (n x k each) when they are not null. (What the objective's
// LogitLoss computes; exposed for tests.)
// REQUIRES: n > 0, k > 0, labels in [0, k).
double TradesLoss(const float* clean, const float* adv, const int32_t* labels, int n, int k,
                  double beta, float* dclean, float* dadv);

// The objective's LogitLoss on a 2n-row batch [x; x']: TradesLoss of the
// clean half against the attacked half, with its gradients for both.
// (Exposed for tests, to check Model::ForwardBackwardLoss with it.)
std::unique_ptr<LogitLoss> NewTradesPairLoss(double beta);

}  // namespace fedsim

#endif  // FEDSIM_ML_TRADES_H_
