// Internal to ml/layers_dense.cc: the dense layer's products for the small
// batches federated tasks train on (batch 10 in the cross-device recipes).
//
// At such batches Eigen's GEMM spends about as long packing the weight matrix
// (and zero-filling its output) as multiplying, because each packed weight is
// used for only n columns. These kernels read the row-major weights and
// activations where they lie, with register blocking and no packing.
//
// Bits: every output is one chain of fused multiply-adds in a fixed order,
// starting from 0 (ascending k for the forward product, ascending batch row
// for the weight gradient, ascending output column for the input gradient).
// The blocking and the vector width change only
// which outputs are computed together, never the order within one, so the
// AVX-512, AVX2 and scalar builds of these kernels give the same bits.
//
// Inline, in the copy's namespace (ml/variant_namespace.h), so each compiled
// copy of the numeric kernels has its own.
#ifndef FEDSIM_ML_SMALL_GEMM_H_
#define FEDSIM_ML_SMALL_GEMM_H_

#include <cmath>
#include <cstddef>
#include <limits>
#include <type_traits>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

#include "ml/sgd.h"
#include "ml/variant_namespace.h"

namespace fedsim {
inline namespace FEDSIM_NUMERIC_NS {
namespace small_gemm {

// Batches up to this size take these kernels; larger ones Eigen's GEMM.
inline constexpr int kMaxBatch = 16;

// One SIMD register of floats (a plain vector type, so that the compiler
// keeps a block's accumulators in registers), with masked access for a
// ragged last chunk.
#if defined(__AVX512F__)
using Vec = __m512;
inline constexpr int kLanes = 16;
inline Vec VZero() { return _mm512_setzero_ps(); }
inline Vec VSplat(float a) { return _mm512_set1_ps(a); }
inline Vec VLoad(const float* p) { return _mm512_loadu_ps(p); }
inline Vec VLoadPart(const float* p, int n) {
  return _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
}
inline void VStore(float* p, Vec v) { _mm512_storeu_ps(p, v); }
inline void VStorePart(float* p, int n, Vec v) {
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
}
// a * b + c, rounded once.
inline Vec VFma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec VSub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
// v, with the lanes where |v| < FLT_MIN (zeros and subnormals) set to +0.
inline Vec VFlushSubnormal(Vec v) {
#if defined(__AVX512DQ__)
  // One classification (0x02 +0, 0x04 -0, 0x20 subnormal) and one blend:
  // a uop less than the comparison of |v|, on the ports the products use.
  return _mm512_mask_mov_ps(v, _mm512_fpclass_ps_mask(v, 0x26), _mm512_setzero_ps());
#else
  const Vec tiny = _mm512_set1_ps(std::numeric_limits<float>::min());
  return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(_mm512_abs_ps(v), tiny, _CMP_NLT_UQ), v);
#endif
}
// Rows x chunks of the forward kernel's register block (24 accumulators of
// 32 registers), and k rows x chunks of the weight-gradient kernel's.
inline constexpr int kFwdRows = 12, kFwdChunks = 2;
inline constexpr int kGradRows = 4, kGradChunks = 4;
#elif defined(__AVX2__) && defined(__FMA__)
using Vec = __m256;
inline constexpr int kLanes = 8;
inline __m256i VMask(int n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
inline Vec VZero() { return _mm256_setzero_ps(); }
inline Vec VSplat(float a) { return _mm256_set1_ps(a); }
inline Vec VLoad(const float* p) { return _mm256_loadu_ps(p); }
inline Vec VLoadPart(const float* p, int n) { return _mm256_maskload_ps(p, VMask(n)); }
inline void VStore(float* p, Vec v) { _mm256_storeu_ps(p, v); }
inline void VStorePart(float* p, int n, Vec v) { _mm256_maskstore_ps(p, VMask(n), v); }
inline Vec VFma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec VSub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
inline Vec VFlushSubnormal(Vec v) {
  const Vec abs = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
  const Vec tiny = _mm256_set1_ps(std::numeric_limits<float>::min());
  return _mm256_and_ps(_mm256_cmp_ps(abs, tiny, _CMP_NLT_UQ), v);
}
// 16 registers: 8 accumulators, 2 weights, 1 broadcast.
inline constexpr int kFwdRows = 4, kFwdChunks = 2;
inline constexpr int kGradRows = 2, kGradChunks = 4;
#else
using Vec = float;
inline constexpr int kLanes = 1;
inline Vec VZero() { return 0.0f; }
inline Vec VSplat(float a) { return a; }
inline Vec VLoad(const float* p) { return *p; }
inline Vec VLoadPart(const float* p, int n) { return n > 0 ? *p : 0.0f; }
inline void VStore(float* p, Vec v) { *p = v; }
inline void VStorePart(float* p, int n, Vec v) {
  if (n > 0) *p = v;
}
inline Vec VFma(Vec a, Vec b, Vec c) { return std::fma(a, b, c); }
inline Vec VSub(Vec a, Vec b) { return a - b; }
inline Vec VFlushSubnormal(Vec v) {
  return std::fabs(v) < std::numeric_limits<float>::min() ? 0.0f : v;
}
inline constexpr int kFwdRows = 4, kFwdChunks = 4;
inline constexpr int kGradRows = 4, kGradChunks = 4;
#endif

// The first n lanes of a register at p (kLanes: all of them), loaded or
// stored; the other lanes load as 0 and are not written.
inline Vec VLoadN(const float* p, int n) { return n < kLanes ? VLoadPart(p, n) : VLoad(p); }
inline void VStoreN(float* p, int n, Vec v) {
  if (n < kLanes) {
    VStorePart(p, n, v);
  } else {
    VStore(p, v);
  }
}

// Fully unrolled loops over a block's registers: the accumulator arrays then
// become registers (without it GCC keeps them in memory and stores them back
// on every step of the inner loop).
#if defined(__clang__)
#define FEDSIM_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define FEDSIM_UNROLL _Pragma("GCC unroll 16")
#else
#define FEDSIM_UNROLL
#endif

// Calls block(std::integral_constant<int, C>, o0, tail) over the columns
// [0, o_size): blocks of Chunks registers while whole ones fit, then single
// registers, the last `tail` columns wide.
template <int Chunks, typename Block>
inline void OverColumns(int o_size, Block&& block) {
  constexpr int L = kLanes;
  int o0 = 0;
  for (; o0 + Chunks * L <= o_size; o0 += Chunks * L) {
    block(std::integral_constant<int, Chunks>{}, o0, L);
  }
  for (; o0 < o_size; o0 += L) {
    block(std::integral_constant<int, 1>{}, o0, o_size - o0 < L ? o_size - o0 : L);
  }
}

// Calls f(std::integral_constant<int, rows>) for 1 <= rows <= R.
template <int R, typename F>
inline void WithRows(int rows, F&& f) {
  if constexpr (R > 1) {
    if (rows < R) return WithRows<R - 1>(rows, f);
  }
  f(std::integral_constant<int, R>{});
}

// Where a register block's results go. Out::At(r, o) is the output shifted
// by r rows and o columns; Out::Put(r, c, n, g) takes register c of block
// row r, whose first n lanes are valid (kLanes when whole).
//
// StoreOut stores the sums themselves.
struct StoreOut {
  float* p;
  size_t row;  // floats between output rows
  StoreOut At(size_t r, size_t o) const { return {p + r * row + o, row}; }
  void Put(int r, int c, int n, Vec g) const {
    VStoreN(p + static_cast<size_t>(r) * row + static_cast<size_t>(c) * kLanes, n, g);
  }
};

// One register block of a sum of outer products:
//   out[r * out_row + j] = sum over t < steps, ascending, from 0, of
//                          a[r * a_row + t * a_step] * b[t * b_step + j]
// for r < R and j < C * kLanes, `tail` valid columns in the last register
// (kLanes when whole), handed to `out` (see StoreOut). The kernels below are
// this: the forward product steps over k, the weight gradient over batch
// rows, the input gradient over output columns.
template <int R, int C, typename Out>
inline void OuterBlock(const float* __restrict a, size_t a_row, size_t a_step,
                       const float* __restrict b, size_t b_step, int steps, int tail,
                       const Out& out) {
  constexpr int L = kLanes;
  Vec acc[R][C];
  FEDSIM_UNROLL
  for (int r = 0; r < R; ++r) {
    FEDSIM_UNROLL
    for (int c = 0; c < C; ++c) acc[r][c] = VZero();
  }
  for (int t = 0; t < steps; ++t) {
    const float* bt = b + static_cast<size_t>(t) * b_step;
    Vec bv[C];
    FEDSIM_UNROLL
    for (int c = 0; c < C; ++c) {
      bv[c] = VLoadN(bt + c * L, c == C - 1 ? tail : L);
    }
    const float* at = a + static_cast<size_t>(t) * a_step;
    FEDSIM_UNROLL
    for (int r = 0; r < R; ++r) {
      const Vec av = VSplat(at[static_cast<size_t>(r) * a_row]);
      FEDSIM_UNROLL
      for (int c = 0; c < C; ++c) acc[r][c] = VFma(av, bv[c], acc[r][c]);
    }
  }
  FEDSIM_UNROLL
  for (int r = 0; r < R; ++r) {
    FEDSIM_UNROLL
    for (int c = 0; c < C; ++c) out.Put(r, c, c == C - 1 ? tail : L, acc[r][c]);
  }
}

// Every row block of the sum of outer products OuterBlock describes, for
// `rows` output rows of o_size columns: blocks of RMax rows x Chunks
// registers, smaller at the edges.
template <int RMax, int Chunks, typename Out>
inline void OuterProducts(const float* a, size_t a_row, size_t a_step, int rows, const float* b,
                          size_t b_step, int steps, int o_size, const Out& out) {
  for (int r0 = 0; r0 < rows; r0 += RMax) {
    WithRows<RMax>(rows - r0 < RMax ? rows - r0 : RMax, [&](auto r) {
      OverColumns<Chunks>(o_size, [&](auto c, int o0, int tail) {
        OuterBlock<decltype(r)::value, decltype(c)::value>(
            a + r0 * a_row, a_row, a_step, b + o0, b_step, steps, tail,
            out.At(static_cast<size_t>(r0), static_cast<size_t>(o0)));
      });
    });
  }
}

// The stored form, `rows` output rows out_row floats apart.
template <int RMax, int Chunks>
inline void OuterProducts(const float* a, size_t a_row, size_t a_step, int rows, const float* b,
                          size_t b_step, int steps, int o_size, float* out, size_t out_row) {
  OuterProducts<RMax, Chunks>(a, a_row, a_step, rows, b, b_step, steps, o_size,
                              StoreOut{out, out_row});
}

// Whether a batch of n rows takes these kernels.
inline bool Handles(int n) { return n > 0 && n <= kMaxBatch; }

// y (n x o_size, row-major) = x (n x k_size, rows ldx apart) * w (k_size x
// o_size, row-major), each output summed over ascending k from 0.
// REQUIRES: 0 < n; y does not overlap x or w.
inline void XTimesW(const float* x, size_t ldx, int n, const float* w, int k_size, int o_size,
                    float* y) {
  OuterProducts<kFwdRows, kFwdChunks>(x, ldx, 1, n, w, static_cast<size_t>(o_size), k_size, o_size,
                                      y, static_cast<size_t>(o_size));
}

// g (k_size x o_size, row-major) = x^T dy for x (n x k_size, rows ldx apart)
// and dy (n x o_size, row-major), each output summed over ascending batch
// row from 0.
// REQUIRES: 0 < n; g does not overlap x or dy.
inline void XtTimesDy(const float* x, size_t ldx, int n, int k_size, const float* dy, int o_size,
                      float* g) {
  OuterProducts<kGradRows, kGradChunks>(x, 1, ldx, k_size, dy, static_cast<size_t>(o_size), n,
                                        o_size, g, static_cast<size_t>(o_size));
}

// StepOut applies an SGD step (SgdElementRule, ml/sgd.h) to each sum, a
// gradient element, instead of storing it: the weights w, the velocity v
// and the anchor a (read only with kProx) are laid out as the output.
// kVelocity: momentum; kDecayTerm: the fma(weight_decay, w, g) term, which
// the rule computes whenever there is weight decay or prox.
template <bool kVelocity, bool kProx, bool kDecayTerm>
struct StepOut {
  float* w;
  float* v;
  const float* a;
  size_t row;
  float lr, wd, mu, m;
  StepOut At(size_t r, size_t o) const {
    const size_t i = r * row + o;
    return {w + i, kVelocity ? v + i : v, kProx ? a + i : a, row, lr, wd, mu, m};
  }
  void Put(int r, int c, int n, Vec g) const {
    const size_t i = static_cast<size_t>(r) * row + static_cast<size_t>(c) * kLanes;
    const Vec wi = VLoadN(w + i, n);
    if constexpr (kDecayTerm) g = VFma(VSplat(wd), wi, g);
    if constexpr (kProx) g = VFma(VSplat(mu), VSub(wi, VLoadN(a + i, n)), g);
    if constexpr (kVelocity) {
      g = VFlushSubnormal(VFma(VSplat(m), VLoadN(v + i, n), g));
      VStoreN(v + i, n, g);
    }
    VStoreN(w + i, n, VFma(VSplat(-lr), g, wi));
  }
};

// XtTimesDy fused with an SGD step: each element of x^T dy is, as soon as
// its register holds it, the gradient of the weight w[i] (k_size x o_size,
// row-major), stepped by `rule` with rule.velocity and anchor (read only
// with rule.prox) at the same element as w. Bit-identical to XtTimesDy
// followed by Sgd::StepRange over the same elements; the gradient is never
// stored, and the weights' and velocity's loads overlap the products.
// REQUIRES: as XtTimesDy; w, the velocity and the anchor overlap neither x
//           nor dy.
inline void XtTimesDyStep(const float* x, size_t ldx, int n, int k_size, const float* dy,
                          int o_size, const SgdElementRule& rule, size_t element, float* w,
                          const float* anchor) {
  const size_t os = static_cast<size_t>(o_size);
  float* v = rule.velocity != nullptr ? rule.velocity + element : nullptr;
  auto run = [&](auto out) {
    OuterProducts<kGradRows, kGradChunks>(x, 1, ldx, k_size, dy, os, n, o_size, out);
  };
  const float lr = rule.lr, wd = rule.weight_decay, mu = rule.prox_mu, m = rule.momentum;
  if (v != nullptr) {
    if (rule.prox) return run(StepOut<true, true, true>{w, v, anchor, os, lr, wd, mu, m});
    // Without weight decay the term is dropped, as Sgd drops it (ml/sgd.cc).
    if (wd != 0.0f) return run(StepOut<true, false, true>{w, v, nullptr, os, lr, wd, mu, m});
    return run(StepOut<true, false, false>{w, v, nullptr, os, lr, wd, mu, m});
  }
  if (rule.prox) return run(StepOut<false, true, true>{w, nullptr, anchor, os, lr, wd, mu, m});
  if (wd != 0.0f) return run(StepOut<false, false, true>{w, nullptr, nullptr, os, lr, wd, mu, m});
  run(StepOut<false, false, false>{w, nullptr, nullptr, os, lr, wd, mu, m});
}

// The input gradient of a dense layer's tile of `rows` rows of W:
//   dx (n x rows, rows ldx apart) = dy (n x o_size, row-major) * W_tile^T
// for W_tile (rows x o_size, row-major, where it lies in the weights). Each
// output is summed over ascending output column j from 0, one fused
// multiply-add per term: dx[b][r] = fma(dy[b][j], W[r][j], ...).
//
// Computed batch-major, as dx^T = W_tile * dy^T: the sum of outer products
// over j of W's column j and dy's column j, so that the vector registers run
// along the batch (n <= kMaxBatch fits one AVX-512 register) and W is read
// where it lies, row by row. Only dy (n x o_size) and the result (rows x n)
// are transposed, in `scratch`.
// REQUIRES: 0 < n <= kMaxBatch; scratch holds (o_size + rows) * n floats;
//           dx overlaps none of dy, w, scratch.
inline void DyTimesWt(const float* dy, int n, int o_size, const float* w, int rows, float* dx,
                      size_t ldx, float* scratch) {
  const size_t nn = static_cast<size_t>(n);
  const size_t os = static_cast<size_t>(o_size);
  float* dyt = scratch;            // o_size x n
  float* dxt = scratch + os * nn;  // rows x n
  for (size_t b = 0; b < nn; ++b) {
    for (size_t j = 0; j < os; ++j) dyt[j * nn + b] = dy[b * os + j];
  }
  OuterProducts<kFwdRows, kFwdChunks>(w, os, 1, rows, dyt, nn, o_size, n, dxt, nn);
  for (size_t b = 0; b < nn; ++b) {
    for (int r = 0; r < rows; ++r)
      dx[b * ldx + static_cast<size_t>(r)] = dxt[static_cast<size_t>(r) * nn + b];
  }
}

#undef FEDSIM_UNROLL

}  // namespace small_gemm
}  // namespace FEDSIM_NUMERIC_NS
}  // namespace fedsim

#endif  // FEDSIM_ML_SMALL_GEMM_H_
