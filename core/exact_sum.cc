#include "core/exact_sum.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fedsim {
namespace {

// Adding 1.5 * 2^52 to a double of magnitude below 2^51 leaves its value
// rounded to an integer (ties to even) in the low mantissa bits: the
// difference of the bit patterns is that integer. Unlike a conversion
// instruction, this vectorizes on every x86-64 level.
constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52
constexpr double kScale = 4294967296.0;        // 2^kFractionBits
static_assert(ExactSum::kMaxTerm * kScale <= 2251799813685248.0, "terms must stay below 2^51");

// round(v * 2^32) for |v| < kMaxTerm.
inline int64_t Fixed(double v) {
  const double t = v * kScale + kMagic;
  return std::bit_cast<int64_t>(t) - std::bit_cast<int64_t>(kMagic);
}

// a + b in two's complement; *overflow becomes nonzero when the signed sum
// does not fit. Unsigned arithmetic: the wrap is defined, and undoing it
// restores the operand exactly.
inline uint64_t AddChecked(uint64_t a, uint64_t b, uint64_t* overflow) {
  const uint64_t s = a + b;
  *overflow |= ((a ^ s) & (b ^ s)) >> 63;
  return s;
}

// Why w * x[first] cannot be a term.
absl::Status TermError(std::span<const float> x, double w, size_t first) {
  return absl::InvalidArgumentError(absl::StrCat(
      "exact sum: value ", first, " is ", x[first], " at weight ", w,
      "; a weighted value must be finite and below ", ExactSum::kMaxTerm, " in magnitude"));
}

}  // namespace

absl::Status ExactSum::Add(double w, std::span<const float> x) { return AddInto(values_, w, x); }

absl::Status ExactSum::AddInto(std::span<int64_t> sum, double w, std::span<const float> x) {
  if (x.size() != sum.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("exact sum: a vector of ", x.size(), " values added to ", sum.size()));
  }
  if (!std::isfinite(w)) return absl::InvalidArgumentError(absl::StrCat("exact sum: weight ", w));
  const size_t n = x.size();
  const float* __restrict in = x.data();
  uint64_t* __restrict acc = reinterpret_cast<uint64_t*>(sum.data());
  // One pass that adds and watches both bounds (NaN fails the comparison
  // too); a refused vector is then subtracted again, term by term, which
  // restores every value exactly (the arithmetic wraps modulo 2^64).
  uint64_t bad = 0;
  for (size_t j = 0; j < n; ++j) {
    const double v = w * static_cast<double>(in[j]);
    bad |= !(std::fabs(v) < kMaxTerm);
    acc[j] = AddChecked(acc[j], static_cast<uint64_t>(Fixed(v)), &bad);
  }
  if (bad == 0) return absl::OkStatus();
  size_t first_term = n;
  size_t first_sum = n;
  for (size_t j = 0; j < n; ++j) {
    const double v = w * static_cast<double>(in[j]);
    const uint64_t q = static_cast<uint64_t>(Fixed(v));
    acc[j] -= q;
    uint64_t o = 0;
    AddChecked(acc[j], q, &o);
    if (!(std::fabs(v) < kMaxTerm) && first_term == n) first_term = j;
    if (o != 0 && first_sum == n) first_sum = j;
  }
  if (first_term < n) return TermError(x, w, first_term);
  return absl::InvalidArgumentError(absl::StrCat("exact sum: the sum at index ", first_sum,
                                                 " leaves the range of ", 2147483648.0,
                                                 " in magnitude"));
}

absl::Status ExactSum::Assign(double w, std::span<const float> x) {
  values_.resize(x.size());
  return AssignInto(values_, w, x);
}

absl::Status ExactSum::AssignInto(std::span<int64_t> sum, double w, std::span<const float> x) {
  if (x.size() != sum.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("exact sum: a vector of ", x.size(), " values assigned to ", sum.size()));
  }
  if (!std::isfinite(w)) {
    std::fill(sum.begin(), sum.end(), 0);
    return absl::InvalidArgumentError(absl::StrCat("exact sum: weight ", w));
  }
  const size_t n = x.size();
  const float* __restrict in = x.data();
  int64_t* __restrict out = sum.data();
  // A term below kMaxTerm (2^19) cannot leave the sum's range (2^31).
  uint64_t bad = 0;
  for (size_t j = 0; j < n; ++j) {
    const double v = w * static_cast<double>(in[j]);
    bad |= !(std::fabs(v) < kMaxTerm);
    out[j] = Fixed(v);
  }
  if (bad == 0) return absl::OkStatus();
  std::fill(sum.begin(), sum.end(), 0);
  size_t first = 0;
  while (std::fabs(w * static_cast<double>(in[first])) < kMaxTerm) ++first;
  return TermError(x, w, first);
}

absl::Status ExactSum::Merge(std::span<const int64_t> other) {
  if (other.size() != values_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("exact sum: a sum of ", other.size(), " values merged into ", values_.size()));
  }
  const size_t n = values_.size();
  uint64_t* __restrict acc = reinterpret_cast<uint64_t*>(values_.data());
  const uint64_t* __restrict add = reinterpret_cast<const uint64_t*>(other.data());
  uint64_t overflow = 0;
  for (size_t j = 0; j < n; ++j) acc[j] = AddChecked(acc[j], add[j], &overflow);
  if (overflow != 0) {
    for (size_t j = 0; j < n; ++j) acc[j] -= add[j];
    return absl::InvalidArgumentError("exact sum: merging two sums leaves the 64-bit range");
  }
  return absl::OkStatus();
}

void ExactSum::ScaledInto(double scale, std::span<float> out) const {
  const double s = scale / kScale;
  const int64_t* __restrict v = values_.data();
  float* __restrict o = out.data();
  for (size_t j = 0; j < values_.size(); ++j)
    o[j] = static_cast<float>(static_cast<double>(v[j]) * s);
}

void ExactSum::AddScaledTo(double scale, std::span<float> out) const {
  const double s = scale / kScale;
  const int64_t* __restrict v = values_.data();
  float* __restrict o = out.data();
  for (size_t j = 0; j < values_.size(); ++j) {
    o[j] = static_cast<float>(static_cast<double>(o[j]) + static_cast<double>(v[j]) * s);
  }
}

ExactSum ExactSum::FromValues(std::vector<int64_t> values) {
  ExactSum sum;
  sum.values_ = std::move(values);
  return sum;
}

void ExactSum::ToHalves(std::vector<double>* high, std::vector<double>* low) const {
  high->resize(values_.size());
  low->resize(values_.size());
  for (size_t j = 0; j < values_.size(); ++j) {
    const int64_t v = values_[j];
    (*high)[j] = static_cast<double>(v >> 32);  // arithmetic shift: floor(v / 2^32)
    (*low)[j] = static_cast<double>(static_cast<uint64_t>(v) & 0xffffffffu);
  }
}

absl::StatusOr<ExactSum> ExactSum::FromHalves(std::span<const double> high,
                                              std::span<const double> low) {
  if (high.size() != low.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("exact sum: ", high.size(), " high halves and ", low.size(), " low halves"));
  }
  std::vector<int64_t> values(high.size());
  for (size_t j = 0; j < high.size(); ++j) {
    const double h = high[j];
    const double l = low[j];
    if (!(h >= -2147483648.0 && h <= 2147483647.0 && h == std::floor(h) && l >= 0 &&
          l <= 4294967295.0 && l == std::floor(l))) {
      return absl::InvalidArgumentError(
          absl::StrCat("exact sum: halves ", h, " and ", l, " at index ", j, " are not a value"));
    }
    values[j] = static_cast<int64_t>(static_cast<uint64_t>(static_cast<int64_t>(h)) << 32 |
                                     static_cast<uint64_t>(l));
  }
  return FromValues(std::move(values));
}

}  // namespace fedsim
