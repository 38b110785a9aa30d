// The GPU backend's scalar arithmetic, written once for the host and the GPU
// (FEDSIM_HD): the batched GEMM's dot product, e^x and log, the softmax
// cross-entropy of one row, the SGD update of one parameter, 2 x 2 max
// pooling's choice. Both executors run exactly these functions, so the CPU
// emulation (ml/gpu/exec_host.h) and the GPU compute the same bits whenever
// the GPU's GEMM accumulates in the same order (it does: see GemmDot).
//
// Every multiply-add that is meant to be fused is an explicit fma; nothing
// else may be contracted (the host side of the backend is compiled with
// -ffp-contract=off and nvcc with -fmad=false), so no compiler choice
// changes a bit. exp and log are our own polynomials, since libm and CUDA's
// libdevice round differently; the CPU's reproducible numeric mode uses the
// same two functions (ml/fixed_math.h).
#ifndef FEDSIM_ML_GPU_GPU_MATH_H_
#define FEDSIM_ML_GPU_GPU_MATH_H_

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ml/gpu/hd.h"

namespace fedsim::gpu {

FEDSIM_HD inline double DoubleFromBits(uint64_t bits) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(bits));
#else
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
#endif
}

FEDSIM_HD inline uint64_t BitsFromDouble(double d) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(d));
#else
  uint64_t bits;
  memcpy(&bits, &d, sizeof d);
  return bits;
#endif
}

// e^x for a float, evaluated in double and rounded once: x = k ln2 + r with
// |r| <= ln2 / 2, a degree-10 Taylor polynomial of e^r, scaled by 2^k
// (exact in double, so tiny results are correctly scaled subnormals).
FEDSIM_HD inline float ExpF(float x) {
  if (x != x) return x;
  if (x < -104.0f) return 0.0f;
  if (x > 88.72283172607421875f) return HUGE_VALF;
  const double kInvLn2 = 1.4426950408889634074;
  const double kLn2 = 0.69314718055994530942;
  const double xd = x;
  const double t = xd * kInvLn2;
  const int64_t k = static_cast<int64_t>(t < 0.0 ? t - 0.5 : t + 0.5);
  const double r = xd - static_cast<double>(k) * kLn2;
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
  const double scale = DoubleFromBits(static_cast<uint64_t>(k + 1023) << 52);
  return static_cast<float>(p * scale);
}

// Natural log of a double: x = 2^e m with m in [sqrt(1/2), sqrt(2)),
// log m = 2 atanh((m - 1) / (m + 1)) by its series to s^25, e ln2 added in
// two parts. NaN for x < 0 or NaN, -inf for 0, +inf for +inf.
FEDSIM_HD inline double LogD(double x) {
  if (!(x > 0.0)) return x == 0.0 ? -HUGE_VAL : NAN;
  if (x == HUGE_VAL) return x;
  int64_t e = 0;
  uint64_t bits = BitsFromDouble(x);
  if ((bits >> 52) == 0) {
    bits = BitsFromDouble(x * 18014398509481984.0);  // 2^54
    e = -54;
  }
  e += static_cast<int64_t>(bits >> 52) - 1023;
  double m = DoubleFromBits((bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1023} << 52));
  if (m > 1.4142135623730950488) {
    m *= 0.5;
    ++e;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
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
  const double kLn2Hi = 0.693147180369123816490;     // 0x1.62e42fefa3800p-1
  const double kLn2Lo = 1.90821492927058770002e-10;  // 0x1.ef35793c76730p-45
  const double ed = static_cast<double>(e);
  return ed * kLn2Hi + (ed * kLn2Lo + log_m);
}

// One batched matrix product C[c] = A[c] B[c] described by strides, so that
// transposes are only a choice of strides: A(c, i, k) is
// a[c * a_batch + i * a_row + k * a_col], B(c, k, j) is
// b[c * b_batch + k * b_row + j * b_col], C(c, i, j) is
// out[c * c_batch + i * c_row + j]. Entry c sums over k < K(c): k if
// k_count is null, else min(k, k_count[c] * k_scale) (a client's own rows,
// so that the rows a shorter client lacks are never read: masked, not
// padded). Sizes are int64 so that strides of large buffers cannot overflow.
struct GemmArgs {
  const float* a = nullptr;
  const float* b = nullptr;
  float* out = nullptr;
  int64_t a_batch = 0, a_row = 0, a_col = 0;
  int64_t b_batch = 0, b_row = 0, b_col = 0;
  int64_t c_batch = 0, c_row = 0;
  int batch = 1;
  int m = 0, n = 0, k = 0;
  const int* k_count = nullptr;
  int k_scale = 1;
};

FEDSIM_HD inline int GemmDepth(const GemmArgs& g, int c) {
  if (g.k_count == nullptr) return g.k;
  const int64_t kc = static_cast<int64_t>(g.k_count[c]) * g.k_scale;
  return kc < g.k ? static_cast<int>(kc) : g.k;
}

// C(c, i, j): one fma per k, k ascending from a zero accumulator. The GPU's
// tiled kernel keeps exactly this order per output, hence the same bits.
FEDSIM_HD inline float GemmDot(const GemmArgs& g, int c, int i, int j) {
  const int depth = GemmDepth(g, c);
  const float* a = g.a + c * g.a_batch + i * g.a_row;
  const float* b = g.b + c * g.b_batch + j * g.b_col;
  float acc = 0.0f;
  for (int k = 0; k < depth; ++k) acc = fmaf(a[k * g.a_col], b[k * g.b_row], acc);
  return acc;
}

// Softmax cross-entropy of one row of `k` logits with label `label`: returns
// the row's loss (in double, as the CPU path sums it), sets *hit when the
// first maximum is the label, and, when d is not null, writes
// d (mean loss) / d logits = (softmax - onehot) * inv_n. The arithmetic of
// ml/layers_loss.cc's SoftmaxCrossEntropy with our own exp and log.
FEDSIM_HD inline double SoftmaxRow(const float* l, int k, int label, float inv_n, float* d,
                                   bool* hit) {
  int arg = 0;
  for (int j = 1; j < k; ++j) {
    if (l[j] > l[arg]) arg = j;
  }
  const float m = l[arg];
  float sum = 0.0f;
  for (int j = 0; j < k; ++j) sum += ExpF(l[j] - m);
  *hit = arg == label;
  if (d != nullptr) {
    const float scale = inv_n / sum;
    for (int j = 0; j < k; ++j) d[j] = ExpF(l[j] - m) * scale;
    d[label] -= inv_n;
  }
  return static_cast<double>(m) + LogD(static_cast<double>(sum)) - l[label];
}

// The SGD options as floats, as ml/sgd.cc applies them.
struct SgdScalars {
  float lr = 0.1f;
  float momentum = 0.0f;
  float weight_decay = 0.0f;
  float prox_mu = 0.0f;
};

// One parameter's SGD step, ml/sgd.cc's arithmetic element for element (the
// same fmas, the same flush of subnormal velocities): w is updated, v (when
// momentum > 0) too; a (the anchor) is read only with a proximal term.
FEDSIM_HD inline void SgdElement(const SgdScalars& s, float g, float a, float* w, float* v) {
  const float wi = *w;
  const bool prox = s.prox_mu > 0.0f;
  // ml/sgd.cc skips the weight-decay fma only in its plain branch.
  float gi =
      (!prox && s.momentum == 0.0f && s.weight_decay == 0.0f) ? g : fmaf(s.weight_decay, wi, g);
  if (prox) gi = fmaf(s.prox_mu, wi - a, gi);
  if (s.momentum > 0.0f) {
    const float vi = fmaf(s.momentum, *v, gi);
    const float vf = fabsf(vi) < 1.17549435082228750797e-38f ? 0.0f : vi;
    *v = vf;
    gi = vf;
  }
  *w = fmaf(-s.lr, gi, wi);
}

// 2 x 2 max pooling: which of the four inputs (in (dy, dx) order, 0..3)
// wins; ties go to the first.
FEDSIM_HD inline int MaxPoolArg(float v0, float v1, float v2, float v3) {
  int arg = 0;
  float best = v0;
  if (v1 > best) {
    arg = 1;
    best = v1;
  }
  if (v2 > best) {
    arg = 2;
    best = v2;
  }
  if (v3 > best) {
    arg = 3;
  }
  return arg;
}

}  // namespace fedsim::gpu

#endif  // FEDSIM_ML_GPU_GPU_MATH_H_
