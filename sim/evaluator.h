// Test-set evaluation of a global model.
//
// The test set is cut into fixed chunks; chunks are evaluated on up to
// `threads` threads (the caller's and a ThreadPool's) and their sums added in
// chunk order, so the figures are bit-identical for any thread count. Not
// thread-safe (one caller: the engine).
#ifndef FEDSIM_SIM_EVALUATOR_H_
#define FEDSIM_SIM_EVALUATOR_H_

#include <memory>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "ml/model.h"
#include "sim/engine.h"
#include "util/thread_pool.h"

namespace fedsim {

class Evaluator : public EvaluatorInterface {
 public:
  // Evaluates on the first `limit` rows of *test (0 = all). `test` must
  // outlive the evaluator.
  static absl::StatusOr<std::unique_ptr<Evaluator>> Create(const ModelConfig& model,
                                                           const Dataset* test, size_t limit,
                                                           int threads);
  // test_loss (mean cross-entropy) and test_accuracy; 0 for an empty test set.
  MetricValues Evaluate(std::span<const float> params) override;
  double Accuracy(std::span<const float> params) override;
  // The summed figures behind Evaluate.
  EvalResult Sums(std::span<const float> params);

 private:
  Evaluator(const Dataset* test, size_t rows, std::vector<std::unique_ptr<Model>> models)
      : test_(test),
        rows_(rows),
        models_(std::move(models)),
        pool_(models_.size() > 1 ? std::make_unique<ThreadPool>(models_.size() - 1) : nullptr) {}
  EvalResult EvaluateChunk(Model& model, std::span<const float> params, size_t begin,
                           size_t end, std::vector<float>& x, std::vector<int32_t>& y);

  static constexpr size_t kChunk = 500;
  const Dataset* test_;
  size_t rows_;
  std::vector<std::unique_ptr<Model>> models_;  // one per thread
  std::unique_ptr<ThreadPool> pool_;            // models_.size() - 1 threads, or none
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_EVALUATOR_H_
