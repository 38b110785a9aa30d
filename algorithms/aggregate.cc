#include "algorithms/aggregate.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "util/checks.h"

namespace fedsim {

void AddWeighted(std::span<float> acc, double w, std::span<const float> x) {
  // Raw restrict pointers so the compiler can vectorize without alias checks;
  // the double intermediate keeps the coefficient's precision.
  float* __restrict a = acc.data();
  const float* __restrict d = x.data();
  const size_t n = acc.size();
  for (size_t j = 0; j < n; ++j) {
    a[j] = static_cast<float>(static_cast<double>(a[j]) + w * static_cast<double>(d[j]));
  }
}

void MixToward(std::span<float> acc, double w, std::span<const float> target) {
  float* __restrict x = acc.data();
  const float* __restrict t = target.data();
  const size_t n = acc.size();
  for (size_t j = 0; j < n; ++j) {
    const double xj = x[j];
    x[j] = static_cast<float>(xj + w * (static_cast<double>(t[j]) - xj));
  }
}

double Median(std::span<const float> values) {
  std::vector<float> v(values.begin(), values.end());
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + mid, v.end());
  const double upper = v[mid];
  if (v.size() % 2 == 1) return upper;
  const double lower = *std::max_element(v.begin(), v.begin() + mid);
  return 0.5 * (lower + upper);
}

absl::Status CoordinateMedian(std::span<const std::span<const float>> vectors,
                              std::span<float> out) {
  if (vectors.empty()) return absl::InvalidArgumentError("CoordinateMedian of no vectors");
  for (size_t i = 0; i < vectors.size(); ++i) {
    if (vectors[i].size() != out.size()) {
      return absl::InvalidArgumentError(absl::StrCat("CoordinateMedian: vector ", i, " has size ",
                                                     vectors[i].size(), ", want ", out.size()));
    }
  }
  std::vector<float> column(vectors.size());
  for (size_t j = 0; j < out.size(); ++j) {
    for (size_t i = 0; i < vectors.size(); ++i) column[i] = vectors[i][j];
    out[j] = static_cast<float>(Median(column));
  }
  return absl::OkStatus();
}

absl::StatusOr<StalenessFn> StalenessFn::FromConfig(const config::Staleness& staleness,
                                                    std::string_view field) {
  ProblemList problems;
  CheckStaleness(staleness, std::string(field), &problems);
  if (!problems.empty()) return problems.ToStatus();
  switch (staleness.kind_case()) {
    case config::Staleness::kConstant:
      return Constant();
    case config::Staleness::kPolynomial:
      return Polynomial(staleness.polynomial().a());
    case config::Staleness::kHinge:
      return Hinge(staleness.hinge().a(), staleness.hinge().b());
    case config::Staleness::KIND_NOT_SET:
      break;
  }
  return Polynomial(0.5);
}

void CheckStaleness(const config::Staleness& staleness, const std::string& path,
                    ProblemList* problems) {
  // Negative exponents would make stale updates weigh more; infinite ones
  // make every stale update weigh 0 (or NaN at s = 0 for the hinge).
  auto check = [&](double v, const std::string& param, std::string_view hint) {
    if (!(v >= 0)) {
      problems->Add(absl::StrCat(path, ".", param),
                    absl::StrCat(param.substr(param.rfind('.') + 1), " = ", NumberText(v),
                                 " is negative", std::string(hint)));
    } else if (std::isinf(v)) {
      problems->Add(absl::StrCat(path, ".", param),
                    absl::StrCat(param.substr(param.rfind('.') + 1), " = ", NumberText(v),
                                 " is not finite; use a finite value >= 0"));
    }
  };
  if (staleness.has_polynomial()) {
    check(staleness.polynomial().a(), "polynomial.a",
          " (stale updates would weigh more); use a >= 0, e.g. 0.5");
  }
  if (staleness.has_hinge()) {
    check(staleness.hinge().a(), "hinge.a", "; use a >= 0");
    check(staleness.hinge().b(), "hinge.b", "; use b >= 0");
  }
}

double StalenessFn::operator()(uint64_t s) const {
  const double ds = static_cast<double>(s);
  switch (kind_) {
    case Kind::kConstant:
      return 1.0;
    case Kind::kPolynomial:
      return std::pow(ds + 1.0, -a_);
    case Kind::kHinge:
      return ds <= b_ ? 1.0 : 1.0 / (a_ * (ds - b_) + 1.0);
  }
  return 1.0;
}

std::string StalenessFn::DebugString() const {
  switch (kind_) {
    case Kind::kConstant:
      return "constant";
    case Kind::kPolynomial:
      return absl::StrCat("polynomial(a=", a_, ")");
    case Kind::kHinge:
      return absl::StrCat("hinge(a=", a_, ",b=", b_, ")");
  }
  return "?";
}

}  // namespace fedsim
