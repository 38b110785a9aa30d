// Test-set evaluation of a global model, and optionally its robust accuracy.
//
// The test set is cut into fixed chunks; chunks are evaluated on up to
// `threads` threads (the caller's and a ThreadPool's) and their sums added in
// chunk order, so the figures are bit-identical for any thread count.
//
// Robust evaluation (ALGORITHMS.md section 7): with a RobustEvalPlan, every
// evaluation also attacks a fixed subset of the evaluated rows,
// RobustEvalSubset(rows, plan.examples, plan.seed), chosen once; its chunks
// of plan.options.chunk_rows go to the same threads, each attacked by
// EvaluateRobust with its own chunk number, so the counts are exactly those
// of one EvaluateRobust call on the whole subset (what `fedsim train` makes)
// whatever the thread count. Figures: robust_accuracy (and fgsm_accuracy
// when the plan asks), the share of the subset whose clean and attacked
// versions are both classified correctly.
//
// Not thread-safe (one caller: the engine).
#ifndef FEDSIM_SIM_EVALUATOR_H_
#define FEDSIM_SIM_EVALUATOR_H_

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "ml/model.h"
#include "ml/robust_eval.h"
#include "sim/engine.h"
#include "util/thread_pool.h"

namespace fedsim {

class Evaluator : public EvaluatorInterface {
 public:
  // Evaluates on the first `limit` rows of *test (0 = all), and the robust
  // accuracy as `robust` says when it is set. `test` must outlive the
  // evaluator. InvalidArgument for a bad model config or robust plan.
  static absl::StatusOr<std::unique_ptr<Evaluator>> Create(
      const ModelConfig& model, const Dataset* test, size_t limit, int threads,
      std::optional<RobustEvalPlan> robust = std::nullopt);

  // robust_accuracy, then fgsm_accuracy when the plan asks for it; none
  // without a plan.
  std::vector<std::string> ExtraMetricNames() const override;
  // test_loss (mean cross-entropy) and test_accuracy, 0 for an empty test
  // set; and the ExtraMetricNames() figures.
  MetricValues Evaluate(std::span<const float> params) override;
  // Clean test accuracy only.
  double Accuracy(std::span<const float> params) override;
  // The summed figures behind test_loss and test_accuracy.
  EvalResult Sums(std::span<const float> params);
  // The counts behind the robust figures (count 0 without a plan).
  // InvalidArgument for params of the wrong size (Evaluate then reports the
  // robust figures as NaN).
  absl::StatusOr<RobustEvalResult> RobustSums(std::span<const float> params);

  // The plan as it runs (examples = the subset's actual size), or nullopt.
  const std::optional<RobustEvalPlan>& robust_plan() const { return robust_; }

 private:
  Evaluator(const Dataset* test, size_t rows, std::vector<std::unique_ptr<Model>> models,
            std::optional<RobustEvalPlan> robust, std::vector<uint32_t> robust_rows)
      : test_(test),
        rows_(rows),
        models_(std::move(models)),
        pool_(models_.size() > 1 ? std::make_unique<ThreadPool>(models_.size() - 1) : nullptr),
        robust_(std::move(robust)),
        robust_rows_(std::move(robust_rows)) {}
  EvalResult EvaluateChunk(Model& model, std::span<const float> params, size_t begin,
                           size_t end, std::vector<float>& x, std::vector<int32_t>& y);

  static constexpr size_t kChunk = 500;
  const Dataset* test_;
  size_t rows_;
  std::vector<std::unique_ptr<Model>> models_;  // one per thread
  std::unique_ptr<ThreadPool> pool_;            // models_.size() - 1 threads, or none
  std::optional<RobustEvalPlan> robust_;
  std::vector<uint32_t> robust_rows_;  // the fixed subset, sorted
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_EVALUATOR_H_
