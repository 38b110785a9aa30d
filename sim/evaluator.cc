#include "sim/evaluator.h"

#include <algorithm>

#include "util/status_macros.h"

namespace fedsim {

absl::StatusOr<std::unique_ptr<Evaluator>> Evaluator::Create(const ModelConfig& model,
                                                             const Dataset* test, size_t limit,
                                                             int threads) {
  const size_t rows = limit > 0 ? std::min(limit, test->size()) : test->size();
  const size_t chunks = (rows + kChunk - 1) / kChunk;
  const int n = static_cast<int>(std::max<size_t>(1, std::min<size_t>(threads, chunks)));
  std::vector<std::unique_ptr<Model>> models;
  for (int i = 0; i < n; ++i) {
    FEDSIM_ASSIGN_OR_RETURN(auto m, NewModel(model));
    models.push_back(std::move(m));
  }
  return std::unique_ptr<Evaluator>(new Evaluator(test, rows, std::move(models)));
}

EvalResult Evaluator::EvaluateChunk(Model& model, std::span<const float> params, size_t begin,
                                    size_t end, std::vector<float>& x, std::vector<int32_t>& y) {
  const size_t n = end - begin;
  x.resize(n * test_->dim());
  y.resize(n);
  test_->GatherRange(begin, end, x.data(), y.data());
  BatchView batch{x.data(), y.data(), static_cast<int>(n)};
  return model.Evaluate(params, batch);
}

MetricValues Evaluator::Evaluate(std::span<const float> params) {
  const EvalResult r = Sums(params);
  MetricValues v;
  v["test_loss"] = r.count > 0 ? r.loss_sum / static_cast<double>(r.count) : 0.0;
  v["test_accuracy"] = r.count > 0 ? static_cast<double>(r.correct) / r.count : 0.0;
  return v;
}

double Evaluator::Accuracy(std::span<const float> params) {
  const EvalResult r = Sums(params);
  return r.count > 0 ? static_cast<double>(r.correct) / r.count : 0.0;
}

EvalResult Evaluator::Sums(std::span<const float> params) {
  const size_t chunks = (rows_ + kChunk - 1) / kChunk;
  std::vector<EvalResult> parts(chunks);
  // Lane w owns models_[w] and evaluates chunks w, w + lanes, ...; every
  // chunk's figures land in its own slot.
  ParallelFor(pool_.get(), models_.size(), [&](size_t lane) {
    std::vector<float> x;
    std::vector<int32_t> y;
    for (size_t c = lane; c < chunks; c += models_.size()) {
      parts[c] = EvaluateChunk(*models_[lane], params, c * kChunk,
                               std::min(rows_, (c + 1) * kChunk), x, y);
    }
  });
  EvalResult total;
  for (const EvalResult& p : parts) {  // fixed order: deterministic sums
    total.loss_sum += p.loss_sum;
    total.correct += p.correct;
    total.count += p.count;
  }
  return total;
}

}  // namespace fedsim
