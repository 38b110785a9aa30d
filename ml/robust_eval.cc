#include "ml/robust_eval.h"

#include <algorithm>
#include <memory>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "ml/layers.h"
#include "util/rng.h"

namespace fedsim {
namespace {

// Writes 1 for each of the n rows whose logits' argmax (first maximum, as
// SoftmaxCrossEntropy breaks ties) is its label, else 0.
void MarkCorrect(const float* logits, const int32_t* y, int n, int k, std::vector<uint8_t>* ok) {
  ok->resize(n);
  for (int i = 0; i < n; ++i) {
    const float* l = logits + static_cast<size_t>(i) * k;
    (*ok)[i] = std::max_element(l, l + k) - l == y[i];
  }
}

}  // namespace

absl::StatusOr<RobustEvalResult> EvaluateRobust(Model& model, std::span<const float> params,
                                                const Dataset& data,
                                                std::span<const uint32_t> indices,
                                                const RobustEvalOptions& options, uint64_t seed,
                                                uint64_t first_chunk) {
  if (absl::Status s = ValidateAttackOptions(options.attack); !s.ok()) return s;
  if (options.chunk_rows <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("robust eval: chunk_rows must be > 0, got ", options.chunk_rows));
  }
  if (data.dim() != model.config().input_dim()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "robust eval: data dim ", data.dim(), " != model input_dim ", model.config().input_dim()));
  }
  if (params.size() != model.NumParams()) {
    return absl::InvalidArgumentError(absl::StrCat("robust eval: params has ", params.size(),
                                                   " floats, the model ", model.NumParams()));
  }
  for (uint32_t i : indices) {
    if (i >= data.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("robust eval: index ", i, " >= dataset size ", data.size()));
    }
  }
  std::unique_ptr<Attack> attack = NewAttack(options.attack).value();
  const AttackOptions& a = options.attack;
  std::unique_ptr<Attack> fgsm;
  if (options.fgsm) fgsm = NewAttack(Fgsm(a.norm, a.eps, a.clip_min, a.clip_max)).value();

  const size_t dim = static_cast<size_t>(data.dim());
  const int k = model.config().num_classes;
  const size_t chunk = static_cast<size_t>(options.chunk_rows);
  const size_t rows = std::min(chunk, indices.size());
  std::vector<float> x(rows * dim), adv(rows * dim), logits(rows * k);
  std::vector<int32_t> y(rows);
  std::vector<uint8_t> clean_ok, adv_ok;

  RobustEvalResult result;
  for (uint64_t begin = 0, c = first_chunk; begin < indices.size(); begin += chunk, ++c) {
    const size_t n = std::min(chunk, indices.size() - begin);
    data.Gather(indices.subspan(begin, n), x.data(), y.data());
    const BatchView clean{x.data(), y.data(), static_cast<int>(n)};
    const std::span<float> adv_span(adv.data(), n * dim);
    const std::span<float> logit_span(logits.data(), n * k);
    model.Logits(params, clean, logit_span);
    MarkCorrect(logits.data(), y.data(), clean.n, k, &clean_ok);

    Rng rng(seed, "robust_eval", c);
    attack->Perturb(model, params, clean, rng, adv_span);
    const BatchView attacked{adv.data(), y.data(), clean.n};
    model.Logits(params, attacked, logit_span);
    MarkCorrect(logits.data(), y.data(), clean.n, k, &adv_ok);
    result.robust_loss_sum +=
        SoftmaxCrossEntropy(logits.data(), y.data(), clean.n, k, nullptr, nullptr);
    for (size_t i = 0; i < n; ++i) {
      result.clean_correct += clean_ok[i];
      result.robust_correct += clean_ok[i] & adv_ok[i];
    }

    if (fgsm != nullptr) {
      // FGSM draws nothing: the stream is only there to fill the signature.
      Rng unused(seed, "robust_eval_fgsm", c);
      fgsm->Perturb(model, params, clean, unused, adv_span);
      model.Logits(params, attacked, logit_span);
      MarkCorrect(logits.data(), y.data(), clean.n, k, &adv_ok);
      for (size_t i = 0; i < n; ++i) result.fgsm_correct += clean_ok[i] & adv_ok[i];
    }
    result.count += static_cast<int64_t>(n);
  }
  return result;
}

std::string RobustEvalPlanName(const RobustEvalPlan& plan) {
  const AttackOptions& a = plan.options.attack;
  std::string name =
      absl::StrCat(AttackName(a), " on ",
                   plan.examples == 0 ? std::string("every test example")
                                      : absl::StrCat(plan.examples, " test examples"),
                   " (seed ", plan.seed, ")");
  if (plan.options.fgsm) {
    absl::StrAppend(&name, ", ", AttackName(Fgsm(a.norm, a.eps, a.clip_min, a.clip_max)));
  }
  return name;
}

std::vector<uint32_t> RobustEvalSubset(size_t size, size_t examples, uint64_t seed) {
  std::vector<uint32_t> rows;
  if (examples == 0 || examples >= size) {
    rows.resize(size);
    std::iota(rows.begin(), rows.end(), 0u);
    return rows;
  }
  Rng rng(seed, "robust_eval_subset");
  for (uint64_t r : rng.SampleWithoutReplacement(size, examples)) {
    rows.push_back(static_cast<uint32_t>(r));
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

}  // namespace fedsim
