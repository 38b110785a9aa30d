// ExactSum: a weighted sum of float vectors whose result does not depend on
// the order or the grouping of its terms.
//
// Each term w * x[j] is computed in double, rounded once to a multiple of
// 2^-32 and added as a 64-bit integer. Integer addition is associative, so
// summing updates one by one as they arrive, in any order, or summing partial
// sums made elsewhere (another thread, a worker process) and merging them,
// gives the same bits. The rounding is a pure function of (w, x[j]), the same
// on every machine and vector width.
//
// Range and resolution: one term's magnitude must stay below 2^19 (524,288)
// and a sum's below 2^31; the resolution is 2^-32 (2.3e-10). Rules choose
// weights near 1 (FedAvg: n_i over the fleet's mean n) so that model deltas
// sit far inside both bounds; an update outside them is refused, never
// wrapped.
//
// Thread safety: a plain value; not synchronized.
#ifndef FEDSIM_CORE_EXACT_SUM_H_
#define FEDSIM_CORE_EXACT_SUM_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace fedsim {

class ExactSum {
 public:
  // Bits after the binary point of the fixed-point values.
  static constexpr int kFractionBits = 32;
  // Exclusive bound on one term |w * x[j]|.
  static constexpr double kMaxTerm = 524288.0;  // 2^19

  ExactSum() = default;
  // n zeros.
  explicit ExactSum(size_t n) : values_(n, 0) {}

  // *this[j] += round(w * x[j] * 2^32). InvalidArgument, leaving *this
  // unchanged, when the sizes differ, w is not finite, an x[j] is not
  // finite, a term reaches kMaxTerm or the sum would leave the 64-bit range
  // (the message names the first bad index).
  absl::Status Add(double w, std::span<const float> x);

  // *this = round(w * x[j] * 2^32): the sum of one term, as a zero sum of
  // x.size() values after Add(w, x), in one pass that writes without reading
  // the old values (a sum whose memory is reused is not zeroed first; its
  // size changes to x.size(), zero-filling only when it grows).
  // InvalidArgument for a weight or term Add refuses; *this is then all
  // zeros.
  absl::Status Assign(double w, std::span<const float> x);

  // Add and Assign on a sum's fixed-point values held elsewhere (a
  // shared-memory slot, say): `acc` and `out` play *this's values, of
  // x.size() elements (InvalidArgument when not), with the same results
  // and the same refusals.
  static absl::Status AddInto(std::span<int64_t> acc, double w, std::span<const float> x);
  static absl::Status AssignInto(std::span<int64_t> out, double w, std::span<const float> x);

  // *this += other, exactly. InvalidArgument, leaving *this unchanged, when
  // the sizes differ or the sum would leave the 64-bit range.
  absl::Status Merge(const ExactSum& other) { return Merge(other.values()); }
  // The same with another sum's fixed-point values held elsewhere.
  absl::Status Merge(std::span<const int64_t> other);
  // *this = the sum whose fixed-point values are `values`, copied into the
  // memory *this holds (zero-filled only where it grows).
  void CopyFrom(std::span<const int64_t> values) { values_.assign(values.begin(), values.end()); }

  // out[j] = float(value[j] * 2^-32 * scale): the sum, scaled (by 1 / the
  // total weight for a mean). REQUIRES: out.size() == size().
  void ScaledInto(double scale, std::span<float> out) const;

  // out[j] = float(out[j] + value[j] * 2^-32 * scale): adds the scaled sum
  // to a model in one pass. REQUIRES: out.size() == size().
  void AddScaledTo(double scale, std::span<float> out) const;

  // Every value back to zero; the size stays.
  void SetZero() { std::fill(values_.begin(), values_.end(), 0); }

  size_t size() const { return values_.size(); }
  bool empty() const { return values_.empty(); }
  // The fixed-point values (units of 2^-32), for checkpoints and the wire.
  std::span<const int64_t> values() const { return values_; }
  // Back from values().
  static ExactSum FromValues(std::vector<int64_t> values);
  // The values' vector, moved out (for reuse of its memory); the sum is
  // left empty.
  std::vector<int64_t> TakeValues() && { return std::move(values_); }

  // Checkpoints hold doubles: each value as its high and low 32-bit halves,
  // both exact in a double. FromHalves refuses halves that are not such
  // integers, or of different lengths (InvalidArgument).
  void ToHalves(std::vector<double>* high, std::vector<double>* low) const;
  static absl::StatusOr<ExactSum> FromHalves(std::span<const double> high,
                                             std::span<const double> low);

  bool operator==(const ExactSum&) const = default;

 private:
  std::vector<int64_t> values_;
};

}  // namespace fedsim

#endif  // FEDSIM_CORE_EXACT_SUM_H_
