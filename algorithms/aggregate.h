// Shared aggregation math: free functions over flat float32 vectors.
//
// Every rule in algorithms/ composes these instead of inheriting from another
// rule (STYLE.md, "The algorithm interface"). Summation order is always the
// order of the arguments, which the engine fixes as the event order, so the
// results are bit-reproducible. Coefficients are double; each element is
// computed as float(acc + double(w) * double(x)), i.e. one rounding to float
// per element and step, independent of vector width (the loops vectorize).
//
// Thread safety: all functions are pure or write only to their output span.
#ifndef FEDSIM_ALGORITHMS_AGGREGATE_H_
#define FEDSIM_ALGORITHMS_AGGREGATE_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/scenario.pb.h"
#include "util/problems.h"

namespace fedsim {

// acc[j] += w * x[j] for every j.
// REQUIRES: acc.size() == x.size().
void AddWeighted(std::span<float> acc, double w, std::span<const float> x);

// acc[j] += w * (target[j] - acc[j]): moves acc a fraction w of the way to
// target (FedAsync: target = x_client, w = alpha S(s)).
// REQUIRES: acc.size() == target.size().
void MixToward(std::span<float> acc, double w, std::span<const float> target);

// Median of the values (mean of the two middle ones for an even count).
// REQUIRES: !values.empty().
double Median(std::span<const float> values);

// out[j] = Median over i of vectors[i][j] (for robust rules). InvalidArgument
// when vectors is empty or the sizes differ.
absl::Status CoordinateMedian(std::span<const std::span<const float>> vectors,
                              std::span<float> out);

// A staleness discount S(s), s = version at arrival - base version. A small
// value type: copy it freely.
class StalenessFn {
 public:
  enum class Kind { kConstant, kPolynomial, kHinge };

  // S(s) = 1.
  static StalenessFn Constant() { return StalenessFn(Kind::kConstant, 0, 0); }
  // S(s) = (s + 1)^-a. REQUIRES: a >= 0.
  static StalenessFn Polynomial(double a) { return StalenessFn(Kind::kPolynomial, a, 0); }
  // S(s) = 1 if s <= b else 1 / (a (s - b) + 1). REQUIRES: a >= 0, b >= 0.
  static StalenessFn Hinge(double a, double b) { return StalenessFn(Kind::kHinge, a, b); }

  // From the scenario message. An unset oneof means the FedAsync/FedBuff
  // default, polynomial(a = 0.5) = 1/sqrt(1+s). `field` names the message in
  // errors ("fedbuff.staleness"): every problem of CheckStaleness, as
  // InvalidArgument (ProblemList::ToStatus).
  static absl::StatusOr<StalenessFn> FromConfig(const config::Staleness& staleness,
                                                std::string_view field);

  // The discount, in (0, 1].
  double operator()(uint64_t s) const;

  Kind kind() const { return kind_; }
  double a() const { return a_; }
  double b() const { return b_; }
  // "constant", "polynomial(a=0.5)", "hinge(a=10,b=4)".
  std::string DebugString() const;

 private:
  StalenessFn(Kind kind, double a, double b) : kind_(kind), a_(a), b_(b) {}
  Kind kind_;
  double a_;
  double b_;
};

// The checks of a Staleness message at `path` ("algorithm.fedbuff.staleness"):
// a (polynomial, hinge) and b (hinge) must be finite and >= 0. The one place
// these are checked: rules' validators and StalenessFn::FromConfig call it.
void CheckStaleness(const config::Staleness& staleness, const std::string& path,
                    ProblemList* problems);

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_AGGREGATE_H_
