// Adversarial examples: FGSM (Goodfellow et al., arXiv 1412.6572) and PGD
// (Madry et al., "Towards Deep Learning Models Resistant to Adversarial
// Attacks", arXiv 1706.06083) under the L-infinity and L2 norms, the inner
// maximization of adversarial training (ALGORITHMS.md section 7).
//
// For each example x (a row of the batch) with label y, PGD-k starts at
//   x_0 = x                       (random_start false), or
//   x_0 = clip(x + d), d uniform in the eps-ball (random_start true: each
//         coordinate in [-eps, eps] for L-infinity; a uniform point of the
//         L2 ball, not of its sphere, for L2),
// and takes k steps on the cross-entropy loss L:
//   L-infinity: x_{i+1} = P(x_i + a * sign(dL/dx(x_i)))
//   L2:         x_{i+1} = P(x_i + a * g / ||g||_2), g = dL/dx(x_i) of that
//               example (no step where g = 0)
// where P projects onto the eps-ball around x (L-infinity: clamps each
// coordinate to [x - eps, x + eps]; L2: scales x_i - x down to norm eps)
// and then clamps into the data's valid range [clip_min, clip_max]
// (clip() above). Clamping only moves a coordinate towards x, so the result
// stays in the ball. A clean value already outside the range is left where
// it is and never pushed further out (the range of that coordinate is
// widened to include it).
// FGSM is the one-step case: x' = P(x + eps * sign(dL/dx(x))) (L2: along
// g / ||g||_2); Fgsm() below builds its options. With a random start and a
// step of 1.25 eps it is the "fast" adversarial training of Wong et al.
// (arXiv 2001.03994).
//
// dL/dx comes from Model::ForwardBackward's `dinput` (checked against finite
// differences for every model kind in model_test.cc). It is the gradient of
// the batch's mean loss, i.e. each example's own gradient over n: neither
// the sign nor the per-example direction depends on that factor.
// PerturbLoss takes the same steps on a caller-given loss L instead.
//
// Thread safety: an Attack holds scratch buffers; one thread at a time.
// Deterministic: a pure function of (options, params, batch, rng stream).
#ifndef FEDSIM_ML_ATTACK_H_
#define FEDSIM_ML_ATTACK_H_

#include <memory>
#include <span>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ml/model.h"
#include "util/rng.h"

namespace fedsim {

enum class AttackKind { kFgsm, kPgd };
enum class AttackNorm { kLinf, kL2 };

// Every field is read by both kinds: FGSM is PGD with steps == 1 (checked),
// so nothing configured is silently dropped. Use Fgsm() for the textbook
// FGSM (step eps, no random start).
struct AttackOptions {
  // Default: kPgd. Names the attack in logs; kFgsm requires steps == 1.
  AttackKind kind = AttackKind::kPgd;
  // Default: kLinf.
  AttackNorm norm = AttackNorm::kLinf;
  // Default: 0.1 (Fashion-MNIST pixels in [0, 1]). Radius of the ball, >= 0.
  double eps = 0.1;
  // Default: 0.01. Length of each step (a above), > 0 (or 0 when eps is 0).
  double step_size = 0.01;
  // Default: 10. Gradient steps, >= 1 (exactly 1 for kFgsm).
  int steps = 10;
  // Default: true. Start from a uniform point of the ball instead of x.
  bool random_start = true;
  // Default: [0, 1] (image pixels). The data's valid range; use
  // -infinity / +infinity for unbounded features. clip_min <= clip_max.
  float clip_min = 0.0f;
  float clip_max = 1.0f;
};

// The textbook FGSM of radius eps: one step of eps from x.
AttackOptions Fgsm(AttackNorm norm, double eps, float clip_min = 0.0f, float clip_max = 1.0f);

// "pgd(linf, eps=0.1, step=0.01, k=10, start=random)",
// "fgsm(l2, eps=1.5, step=1.5, start=clean)" and the like: every value the
// attack reads, for logs and run reports.
std::string AttackName(const AttackOptions& options);

// InvalidArgument naming the field unless eps is finite and >= 0, step_size
// finite and > 0 (or 0 with eps 0), steps >= 1 (== 1 for FGSM), clip_min <= clip_max and
// neither is NaN.
absl::Status ValidateAttackOptions(const AttackOptions& options);

class Attack {
 public:
  virtual ~Attack() = default;

  virtual const AttackOptions& options() const = 0;
  std::string Name() const { return AttackName(options()); }

  // Writes the adversarial version of each row of `batch` into x_adv
  // (batch.n x input_dim floats, same order), attacking `params`. Draws from
  // `rng` only for a random start (a fixed number of draws per row), so the
  // result depends on the stream exactly when random_start is set.
  // REQUIRES: params.size() == model.NumParams(); batch.n > 0;
  //           x_adv.size() == batch.n * model.config().input_dim();
  //           x_adv does not overlap batch.x.
  virtual void Perturb(Model& model, std::span<const float> params, const BatchView& batch,
                       Rng& rng, std::span<float> x_adv) = 0;

  // As Perturb, but every step ascends `loss` of the attacked rows' logits
  // (Model::ForwardBackwardLoss) instead of the cross-entropy; TRADES'
  // attack ascends the KL divergence from the clean predictions
  // (ml/trades.h). The same draws, steps and projections as Perturb.
  // REQUIRES: as Perturb.
  virtual void PerturbLoss(Model& model, std::span<const float> params, const BatchView& batch,
                           LogitLoss& loss, Rng& rng, std::span<float> x_adv) = 0;

  // Forward-backward passes one Perturb costs (FGSM 1, PGD-k k), each on
  // the batch's rows.
  int gradient_passes() const { return options().steps; }
};

// InvalidArgument as ValidateAttackOptions.
absl::StatusOr<std::unique_ptr<Attack>> NewAttack(const AttackOptions& options);

}  // namespace fedsim

#endif  // FEDSIM_ML_ATTACK_H_
