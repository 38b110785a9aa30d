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

#include "ml/gpu/gpu_math.h"
#include "ml/variant_namespace.h"

namespace fedsim {
inline namespace FEDSIM_NUMERIC_NS {

// e^x for a float, evaluated in double and rounded once to float: x = k ln2 +
// r with |r| <= ln2 / 2, e^r by its Taylor polynomial of degree 10 (truncation
// error < 1e-12 relative), then scaled by 2^k. Results below FLT_MIN come out
// as correctly scaled subnormals (the scaling is exact in double). The code is
// the GPU backend's (ml/gpu/gpu_math.h), shared so that both compute the same
// bits.
inline float FixedExpF(float x) { return gpu::ExpF(x); }

// Natural log of a double: x = 2^e m with m in [sqrt(1/2), sqrt(2)), then
// log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its series to
// s^25 (truncation error < 1e-19), and e ln2 added in two parts. NaN for
// x < 0 or NaN, -inf for 0, +inf for +inf.
inline double FixedLog(double x) { return gpu::LogD(x); }

}  // namespace FEDSIM_NUMERIC_NS
}  // namespace fedsim

#endif  // FEDSIM_ML_FIXED_MATH_H_
