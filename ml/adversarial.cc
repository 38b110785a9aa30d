#include "ml/adversarial.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace fedsim {
namespace {

class AdversarialTransform final : public BatchTransform {
 public:
  AdversarialTransform(const AdversarialOptions& options, std::unique_ptr<Attack> attack)
      : options_(options), attack_(std::move(attack)) {}

  std::string Name() const override { return AdversarialName(options_); }

  BatchView Apply(Model& model, std::span<const float> params, const BatchView& in,
                  Rng& rng) override {
    const int n = in.n;
    const size_t dim = static_cast<size_t>(model.config().input_dim());
    const int m = AttackedRows(n, rng);
    if (m == 0) return in;

    // The attacked rows, gathered into a sub-batch (all of them when m == n).
    rows_.clear();
    if (m < n) {
      for (uint64_t r : rng.SampleWithoutReplacement(n, m)) rows_.push_back(static_cast<int>(r));
      std::sort(rows_.begin(), rows_.end());
    } else {
      for (int r = 0; r < n; ++r) rows_.push_back(r);
    }
    BatchView sub = in;
    if (m < n) {
      sub_x_.resize(static_cast<size_t>(m) * dim);
      sub_y_.resize(m);
      for (int i = 0; i < m; ++i) {
        std::memcpy(sub_x_.data() + i * dim, in.x + rows_[i] * dim, sizeof(float) * dim);
        sub_y_[i] = in.y[rows_[i]];
      }
      sub = BatchView{sub_x_.data(), sub_y_.data(), m};
    }

    const size_t out_rows = options_.mode == AdversarialMode::kConcat ? n + m : n;
    out_x_.resize(out_rows * dim);
    out_y_.resize(out_rows);
    float* adv = out_x_.data();  // REPLACE with m == n: attack straight into the output
    if (options_.mode == AdversarialMode::kConcat) {
      std::memcpy(out_x_.data(), in.x, sizeof(float) * n * dim);
      std::copy(in.y, in.y + n, out_y_.begin());
      adv = out_x_.data() + n * dim;
      for (int i = 0; i < m; ++i) out_y_[n + i] = sub.y[i];
    } else if (m < n) {
      std::memcpy(out_x_.data(), in.x, sizeof(float) * n * dim);
      adv_.resize(static_cast<size_t>(m) * dim);
      adv = adv_.data();
    }
    if (options_.mode == AdversarialMode::kReplace) std::copy(in.y, in.y + n, out_y_.begin());

    attack_->Perturb(model, params, sub, rng, std::span<float>(adv, static_cast<size_t>(m) * dim));

    if (options_.mode == AdversarialMode::kReplace && m < n) {
      for (int i = 0; i < m; ++i) {
        std::memcpy(out_x_.data() + rows_[i] * dim, adv + i * dim, sizeof(float) * dim);
      }
    }
    return BatchView{out_x_.data(), out_y_.data(), static_cast<int>(out_rows)};
  }

  int passes_per_step() const override { return attack_->gradient_passes(); }

 private:
  // m = ratio * n, rounded up with probability equal to its fraction.
  int AttackedRows(int n, Rng& rng) const {
    if (options_.ratio >= 1.0) return n;
    const double want = options_.ratio * n;
    const double whole = std::floor(want);
    const int m = static_cast<int>(whole) + (rng.Uniform() < want - whole ? 1 : 0);
    return std::min(m, n);
  }

  const AdversarialOptions options_;
  std::unique_ptr<Attack> attack_;
  std::vector<int> rows_;
  std::vector<float> sub_x_;
  std::vector<int32_t> sub_y_;
  std::vector<float> adv_;
  std::vector<float> out_x_;
  std::vector<int32_t> out_y_;
};

}  // namespace

std::string AdversarialName(const AdversarialOptions& o) {
  return absl::StrCat("adversarial(", AttackName(o.attack), ", ratio=", o.ratio, ", ",
                      o.mode == AdversarialMode::kReplace ? "replace" : "concat", ")");
}

absl::Status ValidateAdversarialOptions(const AdversarialOptions& o) {
  if (absl::Status s = ValidateAttackOptions(o.attack); !s.ok()) return s;
  if (!(o.ratio > 0 && o.ratio <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("adversarial: ratio must be in (0, 1], got ", o.ratio));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<BatchTransform>> NewAdversarialTransform(
    const AdversarialOptions& options) {
  if (absl::Status s = ValidateAdversarialOptions(options); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Attack>> attack = NewAttack(options.attack);
  if (!attack.ok()) return attack.status();
  return std::unique_ptr<BatchTransform>(new AdversarialTransform(options, *std::move(attack)));
}

double AdversarialCostMultiplier(const AdversarialOptions& o, int optimizer_passes) {
  const double trained_rows = o.mode == AdversarialMode::kConcat ? 1.0 + o.ratio : 1.0;
  return optimizer_passes * trained_rows + o.attack.steps * o.ratio;
}

}  // namespace fedsim
