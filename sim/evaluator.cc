#include "sim/evaluator.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

constexpr char kRobustAccuracy[] = "robust_accuracy";
constexpr char kFgsmAccuracy[] = "fgsm_accuracy";

size_t Chunks(size_t rows, size_t chunk) { return (rows + chunk - 1) / chunk; }

}  // namespace

absl::StatusOr<std::unique_ptr<Evaluator>> Evaluator::Create(const ModelConfig& model,
                                                             const Dataset* test, size_t limit,
                                                             int threads,
                                                             std::optional<RobustEvalPlan> robust) {
  const size_t rows = limit > 0 ? std::min(limit, test->size()) : test->size();
  size_t chunks = Chunks(rows, kChunk);
  std::vector<uint32_t> robust_rows;
  if (robust.has_value()) {
    if (absl::Status s = ValidateAttackOptions(robust->options.attack); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("robust evaluation: ", s.message()));
    }
    if (robust->options.chunk_rows <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "robust evaluation: chunk_rows must be > 0, got ", robust->options.chunk_rows));
    }
    robust_rows = RobustEvalSubset(rows, robust->examples, robust->seed);
    robust->examples = robust_rows.size();
    chunks = std::max(chunks, Chunks(robust_rows.size(), robust->options.chunk_rows));
  }
  const int n = static_cast<int>(std::max<size_t>(1, std::min<size_t>(threads, chunks)));
  std::vector<std::unique_ptr<Model>> models;
  for (int i = 0; i < n; ++i) {
    FEDSIM_ASSIGN_OR_RETURN(auto m, NewModel(model));
    models.push_back(std::move(m));
  }
  if (test->dim() != models[0]->config().input_dim()) {
    return absl::InvalidArgumentError(absl::StrCat("evaluator: test data dim ", test->dim(),
                                                   " != model input_dim ",
                                                   models[0]->config().input_dim()));
  }
  return std::unique_ptr<Evaluator>(new Evaluator(test, rows, std::move(models), std::move(robust),
                                                  std::move(robust_rows)));
}

std::vector<std::string> Evaluator::ExtraMetricNames() const {
  if (!robust_.has_value()) return {};
  if (robust_->options.fgsm) return {kRobustAccuracy, kFgsmAccuracy};
  return {kRobustAccuracy};
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
  if (robust_.has_value()) {
    // Create checked everything EvaluateRobust checks except the params'
    // size, which the engine guarantees; a failure would be a bug, shown as
    // NaN rather than as a plausible number.
    const absl::StatusOr<RobustEvalResult> rr = RobustSums(params);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    v[kRobustAccuracy] = rr.ok() ? rr->robust_accuracy() : nan;
    if (robust_->options.fgsm) v[kFgsmAccuracy] = rr.ok() ? rr->fgsm_accuracy() : nan;
  }
  return v;
}

double Evaluator::Accuracy(std::span<const float> params) {
  const EvalResult r = Sums(params);
  return r.count > 0 ? static_cast<double>(r.correct) / r.count : 0.0;
}

EvalResult Evaluator::Sums(std::span<const float> params) {
  const size_t chunks = Chunks(rows_, kChunk);
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

absl::StatusOr<RobustEvalResult> Evaluator::RobustSums(std::span<const float> params) {
  RobustEvalResult total;
  if (!robust_.has_value()) return total;
  const size_t chunk = static_cast<size_t>(robust_->options.chunk_rows);
  const size_t chunks = Chunks(robust_rows_.size(), chunk);
  const std::span<const uint32_t> rows(robust_rows_);
  std::vector<absl::StatusOr<RobustEvalResult>> parts(chunks);
  ParallelFor(pool_.get(), models_.size(), [&](size_t lane) {
    for (size_t c = lane; c < chunks; c += models_.size()) {
      const size_t begin = c * chunk;
      parts[c] = EvaluateRobust(*models_[lane], params, *test_,
                                rows.subspan(begin, std::min(chunk, rows.size() - begin)),
                                robust_->options, robust_->seed, c);
    }
  });
  for (const absl::StatusOr<RobustEvalResult>& p : parts) {  // fixed order
    if (!p.ok()) return p.status();
    total.count += p->count;
    total.clean_correct += p->clean_correct;
    total.robust_correct += p->robust_correct;
    total.fgsm_correct += p->fgsm_correct;
    total.robust_loss_sum += p->robust_loss_sum;
  }
  return total;
}

}  // namespace fedsim
