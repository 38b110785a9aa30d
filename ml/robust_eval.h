// Robust evaluation: accuracy of a model on attacked versions of a fixed set
// of examples (ALGORITHMS.md section 7), the building block of the
// evaluator's robust_accuracy and fgsm_accuracy columns.
//
// An example counts as robustly correct when the model classifies both the
// clean example and its attacked version correctly (the convention of
// AutoAttack, Croce and Hein, arXiv 2003.01690): robust accuracy <= clean
// accuracy always, and equals it at eps = 0. Report eps with every number.
//
// The examples are attacked `chunk_rows` at a time, so memory stays bounded
// by the chunk whatever the number of examples. Chunk c (rows [c * chunk_rows,
// ...) of `indices`) draws its random start from Rng(seed, "robust_eval",
// c): the result is a pure function of (params, examples, options, seed).
// A caller may split the examples at chunk boundaries (across threads) and
// pass each part's first chunk number: the counts add up to the same result.
//
// Thread safety: uses `model` as scratch (one per thread); `data` is only read.
#ifndef FEDSIM_ML_ROBUST_EVAL_H_
#define FEDSIM_ML_ROBUST_EVAL_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "ml/attack.h"
#include "ml/model.h"

namespace fedsim {

struct RobustEvalOptions {
  // Default: PGD-20, L-infinity, eps 0.1, step 0.01, random start, [0, 1]
  // (the usual evaluation attack: more steps than training's).
  AttackOptions attack = {.steps = 20};
  // Default: false. Also FGSM accuracy: Fgsm() with the attack's norm, eps
  // and range.
  bool fgsm = false;
  // Default: 128. Examples attacked at once (> 0). The model's workspaces
  // grow to this many rows: about 0.4 MB per row for McMahan's CNN (its
  // activations and their gradients), under 10 KB for the MLP.
  int chunk_rows = 128;
};

struct RobustEvalResult {
  int64_t count = 0;
  int64_t clean_correct = 0;
  int64_t robust_correct = 0;  // clean and attacked both correct
  int64_t fgsm_correct = 0;    // the same under FGSM; 0 unless options.fgsm
  double robust_loss_sum = 0;  // summed cross-entropy on the attacked examples

  double clean_accuracy() const { return Ratio(clean_correct); }
  double robust_accuracy() const { return Ratio(robust_correct); }
  double fgsm_accuracy() const { return Ratio(fgsm_correct); }

 private:
  double Ratio(int64_t k) const {
    return count > 0 ? static_cast<double>(k) / static_cast<double>(count) : 0.0;
  }
};

// Attacks data's rows `indices` (in that order) against params; indices[0]
// starts chunk `first_chunk` (see the file comment).
// InvalidArgument for bad attack options, chunk_rows <= 0, a data dim that
// is not the model's input_dim, a params size that is not NumParams() or an
// index out of range. An empty `indices` gives count 0.
absl::StatusOr<RobustEvalResult> EvaluateRobust(Model& model, std::span<const float> params,
                                                const Dataset& data,
                                                std::span<const uint32_t> indices,
                                                const RobustEvalOptions& options, uint64_t seed,
                                                uint64_t first_chunk = 0);

// The fixed evaluation subset: `examples` distinct rows of a dataset of
// `size`, drawn by Rng(seed, "robust_eval_subset") and sorted; every row
// when examples == 0 or examples >= size.
std::vector<uint32_t> RobustEvalSubset(size_t size, size_t examples, uint64_t seed);

// A robust evaluation as runs (the sim evaluator) and `fedsim train` do it:
// EvaluateRobust(..., seed) on RobustEvalSubset(test rows, examples, seed).
// The same plan, test rows and params give the same counts in both.
struct RobustEvalPlan {
  // Default: RobustEvalOptions's (PGD-20, L-infinity, eps 0.1).
  RobustEvalOptions options;
  // Default: 1000. Size of the fixed subset; 0 = every test row.
  size_t examples = 1000;
  // Default: 1. The run's seed: picks the subset and the random starts.
  uint64_t seed = 1;
};

// "pgd(linf, eps=0.1, step=0.01, k=20, start=random) on 1000 test examples
// (seed 1), fgsm(linf, eps=0.1, step=0.1, start=clean)": every value the
// evaluation reads, for manifests and logs (robust figures must be reported
// with their eps).
std::string RobustEvalPlanName(const RobustEvalPlan& plan);

}  // namespace fedsim

#endif  // FEDSIM_ML_ROBUST_EVAL_H_
