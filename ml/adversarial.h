// Adversarial training as a per-batch input transform (ml/batch_transform.h):
// before each local step, a fraction of the minibatch is attacked (ml/attack.h)
// against the current parameters, and the optimizer steps on the result.
//
//   REPLACE: the attacked rows take the place of their clean versions; ratio
//            1.0 is Madry et al.'s adversarial training (arXiv 1706.06083).
//   CONCAT:  the attacked copies are appended to the whole clean batch, as in
//            Federated Adversarial Training (Zizzo et al., arXiv 2012.01791);
//            the optimizer sees n + m rows, so each loss term is weighted by
//            1 / (n + m).
//
// The client-side inner loop of FAT and FAL (Li, Song, Yang, arXiv
// 2208.03635); any aggregation rule then averages the adversarially trained
// updates (ALGORITHMS.md section 7).
//
// Which rows are attacked: m = ratio * n rounded stochastically (floor, plus
// one with probability equal to the fraction), so that the expected share is
// exactly `ratio` at any batch size, drawn without replacement from the batch
// by the step's Rng, which the attack's random start then continues. Ratio
// 1.0 attacks every row and draws nothing for the choice.
//
// Thread safety: an instance holds its attack's scratch and the output
// buffers; one thread at a time. Deterministic given (params, batch, rng).
#ifndef FEDSIM_ML_ADVERSARIAL_H_
#define FEDSIM_ML_ADVERSARIAL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "ml/attack.h"
#include "ml/batch_transform.h"

namespace fedsim {

enum class AdversarialMode { kReplace, kConcat };

struct AdversarialOptions {
  // Default: PGD-10, L-infinity, eps 0.1, step 0.01, random start, [0, 1].
  AttackOptions attack;
  // Default: 1.0. Fraction of each batch attacked, in (0, 1].
  double ratio = 1.0;
  // Default: kReplace.
  AdversarialMode mode = AdversarialMode::kReplace;
};

// "adversarial(pgd(linf, eps=0.1, step=0.01, k=10, start=random), ratio=0.5,
// concat)": every value the transform reads.
std::string AdversarialName(const AdversarialOptions& options);

// InvalidArgument as ValidateAttackOptions, or unless 0 < ratio <= 1.
absl::Status ValidateAdversarialOptions(const AdversarialOptions& options);

// A BatchTransform whose passes_per_step() is the attack's gradient passes
// (PGD-k: k, FGSM: 1; each on the attacked rows only).
// InvalidArgument as ValidateAdversarialOptions.
absl::StatusOr<std::unique_ptr<BatchTransform>> NewAdversarialTransform(
    const AdversarialOptions& options);

// Forward-backward passes one training step costs per clean example, relative
// to one plain SGD pass over the batch: the attack's passes over the ratio
// share of the batch, plus the optimizer's `optimizer_passes` over the batch
// it trains on (1 + ratio times the clean batch under CONCAT). PGD-k with
// ratio 1 under SGD: k + 1; the same under SAM: k + 2. The device model's
// compute-cost factor.
double AdversarialCostMultiplier(const AdversarialOptions& options, int optimizer_passes);

}  // namespace fedsim

#endif  // FEDSIM_ML_ADVERSARIAL_H_
