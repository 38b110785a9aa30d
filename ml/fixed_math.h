// exp and log written out in plain arithmetic, for the reproducible copy of
// the numeric kernels (ml/variant_namespace.h).
//
// Why not libm: glibc picks expf, exp and log implementations per CPU at load
// time (ifuncs: an FMA variant and an SSE2 one), and the variants round
// differently. Measured on glibc 2.36 over 2e7 arguments in the softmax's
// range: exp differs in 13,876 results, log in 189, expf in 2 between the FMA
// variant and the one GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA selects; a
// different glibc release may differ again. These functions use only +, *,
// division, comparisons and bit operations, so a given binary computes the same
// bits on every host.
//
// Accuracy (ml/fixed_math_test.cc): FixedExpF within 1 ulp of the correctly
// rounded expf; FixedLog within 2 ulp of log. Neither sets errno.
// Thread-safe (pure functions).
#ifndef FEDSIM_ML_FIXED_MATH_H_
#define FEDSIM_ML_FIXED_MATH_H_

#include <bit>
#include <cstdint>
#include <limits>

#include "ml/variant_namespace.h"

namespace fedsim {
inline namespace FEDSIM_NUMERIC_NS {

// e^x for a float, evaluated in double and rounded once to float: x = k ln2 +
// r with |r| <= ln2 / 2, e^r by its Taylor polynomial of degree 10 (truncation
// error < 1e-12 relative), then scaled by 2^k. Results below FLT_MIN come out
// as correctly scaled subnormals (the scaling is exact in double).
inline float FixedExpF(float x) {
  if (x != x) return x;          // NaN
  if (x < -104.0f) return 0.0f;  // below half the smallest subnormal
  // Above the largest float whose e^x is finite (log(FLT_MAX) = 88.7228391...).
  if (x > 0x1.62e42ep+6f) return std::numeric_limits<float>::infinity();
  constexpr double kInvLn2 = 1.4426950408889634074;
  constexpr double kLn2 = 0.69314718055994530942;
  const double xd = x;
  const double t = xd * kInvLn2;
  // Round to nearest integer; |t| < 151, so the truncation is exact.
  const int64_t k = static_cast<int64_t>(t < 0.0 ? t - 0.5 : t + 0.5);
  const double r = xd - static_cast<double>(k) * kLn2;
  // Horner form of sum_{i<=10} r^i / i!.
  double p = 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const double scale = std::bit_cast<double>(static_cast<uint64_t>(k + 1023) << 52);
  return static_cast<float>(p * scale);
}

// Natural log of a double: x = 2^e m with m in [sqrt(1/2), sqrt(2)), then
// log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its series to
// s^25 (truncation error < 1e-19), and e ln2 added in two parts.
inline double FixedLog(double x) {
  if (x != x) return x;
  if (x < 0.0) return std::numeric_limits<double>::quiet_NaN();
  if (x == 0.0) return -std::numeric_limits<double>::infinity();
  if (x == std::numeric_limits<double>::infinity()) return x;
  int64_t e = 0;
  uint64_t bits = std::bit_cast<uint64_t>(x);
  if ((bits >> 52) == 0) {  // subnormal: scale into the normal range first
    bits = std::bit_cast<uint64_t>(x * 0x1p54);
    e = -54;
  }
  e += static_cast<int64_t>(bits >> 52) - 1023;
  // m in [1, 2), then into [sqrt(1/2), sqrt(2)).
  double m = std::bit_cast<double>((bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1023} << 52));
  if (m > 1.4142135623730950488) {
    m *= 0.5;
    ++e;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  // Horner form of sum_{j<=12} s^(2j) / (2j + 1).
  double q = 1.0 / 25.0;
  q = q * s2 + 1.0 / 23.0;
  q = q * s2 + 1.0 / 21.0;
  q = q * s2 + 1.0 / 19.0;
  q = q * s2 + 1.0 / 17.0;
  q = q * s2 + 1.0 / 15.0;
  q = q * s2 + 1.0 / 13.0;
  q = q * s2 + 1.0 / 11.0;
  q = q * s2 + 1.0 / 9.0;
  q = q * s2 + 1.0 / 7.0;
  q = q * s2 + 1.0 / 5.0;
  q = q * s2 + 1.0 / 3.0;
  const double log_m = 2.0 * s + 2.0 * s * s2 * q;
  // ln2 split so that e * kLn2Hi is exact for |e| < 2^11.
  constexpr double kLn2Hi = 0x1.62e42fefa3800p-1;
  constexpr double kLn2Lo = 0x1.ef35793c76730p-45;
  const double ed = static_cast<double>(e);
  return ed * kLn2Hi + (ed * kLn2Lo + log_m);
}

}  // namespace FEDSIM_NUMERIC_NS
}  // namespace fedsim

#endif  // FEDSIM_ML_FIXED_MATH_H_
