// k x k "same" convolution: im2col + GEMM, and a direct AVX-512 kernel for
// the native copy on AVX-512 builds.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ml/layer_util.h"
#include "ml/layers.h"

// The direct kernel exists only in AVX-512 builds of the native copy. The
// reproducible copy is compiled for x86-64-v3 (so __AVX512F__ is never set
// there); the second condition says so explicitly.
#if defined(__AVX512F__) && !FEDSIM_NUMERIC_REPRODUCIBLE
#define FEDSIM_DIRECT_CONV 1
#include <immintrin.h>
#else
#define FEDSIM_DIRECT_CONV 0
#endif

namespace fedsim {
inline namespace FEDSIM_NUMERIC_NS {
namespace {

using layer_util::ActName;
using layer_util::AddBiasActivate;
using layer_util::ColMatMap;
using layer_util::ColumnSums;
using layer_util::ConstMatMap;
using layer_util::FillUniform;
using layer_util::MaskRelu;
using layer_util::MatMap;
using layer_util::TransposeBiasActivate;

// im2col chunks are kept near 1 MiB so that the GEMM reads them from L2.
constexpr size_t kIm2ColChunkFloats = size_t{1} << 18;

#if FEDSIM_DIRECT_CONV
// Output channels per direct-convolution block: two AVX-512 vectors.
constexpr int kDirectCo = 32;
// Output pixels per block: 2 * kDirectPx accumulators + 3 registers <= 32.
constexpr int kDirectPx = 14;

// Copies an HWC image (h x w x c) into *out as rows of w + k - 1 pixels, the
// first `pad` and the last k - 1 - pad of them zero.
void PadRows(const float* x, int h, int w, int c, int k, int pad, const float*,
             Scratch<float>* out) {
  const int wp = w + k - 1;
  const size_t row = static_cast<size_t>(wp) * c;
  if (out->size() < row * h) out->resize(row * h);
  float* dst = out->data();
  for (int iy = 0; iy < h; ++iy, dst += row) {
    std::memset(dst, 0, sizeof(float) * pad * c);
    std::memcpy(dst + static_cast<size_t>(pad) * c, x + static_cast<size_t>(iy) * w * c,
                sizeof(float) * w * c);
    std::memset(dst + static_cast<size_t>(pad + w) * c, 0, sizeof(float) * (k - 1 - pad) * c);
  }
}

// PX output pixels x 32 output channels [co0, co0 + 32) of one output row:
// out[px, co] = act(b[co] + sum over valid ky and all (kx, c) of
// xr[ky][(px + kx) * cin + c] * w[((ky * k + kx) * cin + c) * cout + co]).
// xr points at the padded input row of ky = 0 (its first pixel ox0), rows
// `row` floats apart; ky runs over [ky0, ky1).
template <int PX>
void DirectBlock(const float* xr, size_t row, int ky0, int ky1, int k, int cin, int cout,
                 const float* w, const float* b, bool relu, float* out) {
  __m512 a0[PX], a1[PX];
#pragma GCC unroll 16
  for (int p = 0; p < PX; ++p) {
    a0[p] = _mm512_setzero_ps();
    a1[p] = _mm512_setzero_ps();
  }
  const int span = k * cin;  // the (kx, c) run of one kernel row
  for (int ky = ky0; ky < ky1; ++ky) {
    const float* xk = xr + ky * row;
    const float* wk = w + static_cast<size_t>(ky) * span * cout;
    for (int t = 0; t < span; ++t) {
      const __m512 w0 = _mm512_loadu_ps(wk + static_cast<size_t>(t) * cout);
      const __m512 w1 = _mm512_loadu_ps(wk + static_cast<size_t>(t) * cout + 16);
#pragma GCC unroll 16
      for (int p = 0; p < PX; ++p) {
        const __m512 v = _mm512_set1_ps(xk[p * cin + t]);
        a0[p] = _mm512_fmadd_ps(v, w0, a0[p]);
        a1[p] = _mm512_fmadd_ps(v, w1, a1[p]);
      }
    }
  }
  const __m512 b0 = b != nullptr ? _mm512_loadu_ps(b) : _mm512_setzero_ps();
  const __m512 b1 = b != nullptr ? _mm512_loadu_ps(b + 16) : _mm512_setzero_ps();
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int p = 0; p < PX; ++p) {
    __m512 v0 = _mm512_add_ps(a0[p], b0);
    __m512 v1 = _mm512_add_ps(a1[p], b1);
    if (relu) {
      v0 = _mm512_max_ps(v0, zero);
      v1 = _mm512_max_ps(v1, zero);
    }
    _mm512_storeu_ps(out + static_cast<size_t>(p) * cout, v0);
    _mm512_storeu_ps(out + static_cast<size_t>(p) * cout + 16, v1);
  }
}

using DirectBlockFn = void (*)(const float*, size_t, int, int, int, int, int, const float*,
                               const float*, bool, float*);

template <int... P>
constexpr std::array<DirectBlockFn, sizeof...(P) + 1> MakeDirectBlocks(
    std::integer_sequence<int, P...>) {
  return {nullptr, &DirectBlock<P + 1>...};
}
constexpr auto kDirectBlocks = MakeDirectBlocks(std::make_integer_sequence<int, kDirectPx>{});

// Stride-1 "same" convolution of one HWC example by direct summation, no
// im2col: xp is the input as PadRows wrote it (h rows of w + k - 1 pixels,
// `pad` zero pixels on the left), w is (k*k*cin) x cout row-major, out is
// h x w x cout. Kernel rows that fall outside the image are skipped.
// REQUIRES: cout % kDirectCo == 0. b may be null.
void DirectConv(const float* xp, int h, int w, int cin, int cout, int k, int pad,
                const float* wt, const float* b, Activation act, float* out) {
  const size_t row = static_cast<size_t>(w + k - 1) * cin;
  const bool relu = act == Activation::kRelu;
  // Even blocks: 28 pixels as 14 + 14, 14 as one block, 20 as 10 + 10.
  const int blocks = (w + kDirectPx - 1) / kDirectPx;
  for (int oy = 0; oy < h; ++oy) {
    const int ky0 = std::max(0, pad - oy);
    const int ky1 = std::min(k, h + pad - oy);
    // Padded input row oy + ky - pad for ky = 0 (may be out of range, but
    // only rows [ky0, ky1) are read).
    const float* xr = xp + (static_cast<ptrdiff_t>(oy) - pad) * static_cast<ptrdiff_t>(row);
    for (int co0 = 0; co0 < cout; co0 += kDirectCo) {
      int ox0 = 0;
      for (int blk = 0; blk < blocks; ++blk) {
        const int px = (w - ox0) / (blocks - blk);
        kDirectBlocks[px](xr + static_cast<size_t>(ox0) * cin, row, ky0, ky1, k, cin, cout,
                          wt + co0, b != nullptr ? b + co0 : nullptr, relu,
                          out + (static_cast<size_t>(oy) * w + ox0) * cout + co0);
        ox0 += px;
      }
    }
  }
}
#endif  // FEDSIM_DIRECT_CONV

}  // namespace

// ---------------------------------------------------------------- Conv2d

Conv2d::Conv2d(TensorShape in, int out_channels, int kernel, Activation act, bool input_chw)
    : in_(in),
      out_c_(out_channels),
      k_(kernel),
      pad_((kernel - 1) / 2),
      act_(act),
      patch_(kernel * kernel * in.channels),
      pixels_(in.height * in.width) {
  const size_t per_example = static_cast<size_t>(pixels_) * patch_;
  chunk_ = static_cast<int>(std::max<size_t>(1, kIm2ColChunkFloats / per_example));
  // With one channel the two layouts coincide; the HWC path is the fast one.
  if (input_chw && in.channels > 1) {
    cs_ = in.height * in.width;
    ys_ = in.width;
    xs_ = 1;
  } else {
    cs_ = 1;
    ys_ = in.width * in.channels;
    xs_ = in.channels;
  }
}

std::string Conv2d::Name() const {
  return absl::StrCat("conv", k_, "x", k_, "(", in_.channels, "x", in_.height, "x", in_.width,
                      "->", out_c_, ActName(act_), ")");
}

void Conv2d::Init(Rng& rng, std::span<float> params) const {
  const double fan_in = patch_;
  const double fan_out = static_cast<double>(k_) * k_ * out_c_;
  const double bound = act_ == Activation::kRelu ? std::sqrt(6.0 / fan_in)
                                                 : std::sqrt(6.0 / (fan_in + fan_out));
  const size_t nw = static_cast<size_t>(patch_) * out_c_;
  FillUniform(rng, bound, params.data(), nw);
  std::fill(params.begin() + nw, params.end(), 0.0f);
}

void Conv2d::Im2Col(const float* x, int count) {
  const int h = in_.height, w = in_.width, c = in_.channels, k = k_;
  const int in_dim = in_.dim();
  const size_t need = static_cast<size_t>(count) * pixels_ * patch_;
  if (col_.size() < need) col_.resize(need);
  float* row = col_.data();
  for (int s = 0; s < count; ++s) {
    const float* base = x + static_cast<size_t>(s) * in_dim;
    for (int oy = 0; oy < h; ++oy) {
      for (int ox = 0; ox < w; ++ox, row += patch_) {
        // Valid kernel columns for this output column: ix = ox + kx - pad in [0, w).
        const int kx0 = std::max(0, pad_ - ox);
        const int kx1 = std::min(k, w - ox + pad_);
        for (int ky = 0; ky < k; ++ky) {
          float* dst = row + ky * k * c;
          const int iy = oy + ky - pad_;
          if (iy < 0 || iy >= h || kx0 >= kx1) {
            std::memset(dst, 0, sizeof(float) * k * c);
            continue;
          }
          if (c == 1) {
            // One channel (the first layer): rows of k floats, too short for
            // memcpy/memset calls to pay off.
            const float* src = base + iy * ys_ + (ox + kx0 - pad_);
            for (int kx = 0; kx < kx0; ++kx) dst[kx] = 0.0f;
            for (int kx = kx0; kx < kx1; ++kx) dst[kx] = src[kx - kx0];
            for (int kx = kx1; kx < k; ++kx) dst[kx] = 0.0f;
            continue;
          }
          if (kx0 > 0) std::memset(dst, 0, sizeof(float) * kx0 * c);
          if (cs_ == 1) {
            // HWC: the valid (kx, c) run is contiguous in the input.
            std::memcpy(dst + kx0 * c, base + iy * ys_ + (ox + kx0 - pad_) * xs_,
                        sizeof(float) * (kx1 - kx0) * c);
          } else {
            for (int kx = kx0; kx < kx1; ++kx) {
              const float* src = base + iy * ys_ + (ox + kx - pad_) * xs_;
              for (int ch = 0; ch < c; ++ch) dst[kx * c + ch] = src[ch * cs_];
            }
          }
          if (kx1 < k) std::memset(dst + kx1 * c, 0, sizeof(float) * (k - kx1) * c);
        }
      }
    }
  }
}

void Conv2d::Col2Im(int count, float* dx) const {
  const int h = in_.height, w = in_.width, c = in_.channels, k = k_;
  const int in_dim = in_.dim();
  const float* row = dcol_.data();
  for (int s = 0; s < count; ++s) {
    float* base = dx + static_cast<size_t>(s) * in_dim;
    for (int oy = 0; oy < h; ++oy) {
      for (int ox = 0; ox < w; ++ox, row += patch_) {
        const int kx0 = std::max(0, pad_ - ox);
        const int kx1 = std::min(k, w - ox + pad_);
        for (int ky = 0; ky < k; ++ky) {
          const int iy = oy + ky - pad_;
          if (iy < 0 || iy >= h) continue;
          const float* src = row + ky * k * c;
          if (cs_ == 1) {
            float* dst = base + iy * ys_ + (ox + kx0 - pad_) * xs_;
            const float* s = src + kx0 * c;
            const int len = (kx1 - kx0) * c;
            for (int j = 0; j < len; ++j) dst[j] += s[j];
          } else {
            for (int kx = kx0; kx < kx1; ++kx) {
              float* dst = base + iy * ys_ + (ox + kx - pad_) * xs_;
              for (int ch = 0; ch < c; ++ch) dst[ch * cs_] += src[kx * c + ch];
            }
          }
        }
      }
    }
  }
}

void Conv2d::Forward(const float* params, const float* x, int n, float* y) {
  const float* b = params + static_cast<size_t>(patch_) * out_c_;
  const int in_dim = in_.dim();
  const size_t out_per_example = static_cast<size_t>(pixels_) * out_c_;
#if FEDSIM_DIRECT_CONV
  if (cs_ == 1 && out_c_ % kDirectCo == 0) {
    for (int s = 0; s < n; ++s) {
      PadRows(x + static_cast<size_t>(s) * in_dim, in_.height, in_.width, in_.channels, k_, pad_,
              nullptr, &pad_buf_);
      DirectConv(pad_buf_.data(), in_.height, in_.width, in_.channels, out_c_, k_, pad_, params,
                 b, act_, y + s * out_per_example);
    }
    return;
  }
#endif
  ConstMatMap wm(params, patch_, out_c_);
  for (int s0 = 0; s0 < n; s0 += chunk_) {
    const int count = std::min(chunk_, n - s0);
    Im2Col(x + static_cast<size_t>(s0) * in_dim, count);
    const int rows = count * pixels_;
    ConstMatMap colm(col_.data(), rows, patch_);
    float* yc = y + s0 * out_per_example;
    MatMap ym(yc, rows, out_c_);
    ym.noalias() = colm * wm;
    AddBiasActivate(b, rows, out_c_, act_, yc);
  }
}

void Conv2d::Backward(const float* params, const float* x, const float* y, float* dy, int n,
                      float* dparams, float* dx) {
  ConstMatMap wm(params, patch_, out_c_);
  const size_t nw = static_cast<size_t>(patch_) * out_c_;
  if (patch_ % 16 == 0 && dwtmp_.size() < nw) dwtmp_.resize(nw);
  // d loss / d W, column-major (patch_ x out_c_) when patch_ fills whole
  // AVX-512 vectors (conv2: M = 800 is the long side); row-major straight
  // into dparams otherwise (conv1's 25 rows run better transposed).
  const bool dw_col = patch_ % 16 == 0;
  // Null dparams: the input gradient only (an adversarial attack's pass).
  const bool want_params = dparams != nullptr;
  ColMatMap dwm(dwtmp_.data(), patch_, out_c_);
  MatMap dwr(dparams, patch_, out_c_);
  float* db = want_params ? dparams + nw : nullptr;
  const int in_dim = in_.dim();
  const size_t out_per_example = static_cast<size_t>(pixels_) * out_c_;
#if FEDSIM_DIRECT_CONV
  const bool direct_dx = dx != nullptr && cs_ == 1 && in_.channels % kDirectCo == 0;
  if (direct_dx) {
    // wflip_[(ky', kx', o), c] = W[(k-1-ky', k-1-kx', c), o].
    const int c = in_.channels, kk = k_ * k_;
    wflip_.resize(nw);
    for (int t = 0; t < kk; ++t) {
      const float* src = params + static_cast<size_t>(kk - 1 - t) * c * out_c_;
      float* dst = wflip_.data() + static_cast<size_t>(t) * out_c_ * c;
      for (int ch = 0; ch < c; ++ch)
        for (int o = 0; o < out_c_; ++o) dst[o * c + ch] = src[ch * out_c_ + o];
    }
  } else if (dx != nullptr) {
    std::fill(dx, dx + static_cast<size_t>(n) * in_dim, 0.0f);
  }
#else
  if (dx != nullptr) std::fill(dx, dx + static_cast<size_t>(n) * in_dim, 0.0f);
#endif
  for (int s0 = 0; s0 < n; s0 += chunk_) {
    const int count = std::min(chunk_, n - s0);
    const int rows = count * pixels_;
    float* dyc = dy + s0 * out_per_example;
    if (act_ == Activation::kRelu) {
      MaskRelu(y + s0 * out_per_example, static_cast<size_t>(rows) * out_c_, dyc);
    }
    // Recomputing im2col is cheaper than keeping the whole batch's columns:
    // they would not fit in cache.
    ConstMatMap dym(dyc, rows, out_c_);
    if (want_params) {
      Im2Col(x + static_cast<size_t>(s0) * in_dim, count);
      ConstMatMap colm(col_.data(), rows, patch_);
      if (dw_col) {
        if (s0 == 0) {
          dwm.noalias() = colm.transpose() * dym;
        } else {
          dwm.noalias() += colm.transpose() * dym;
        }
      } else if (s0 == 0) {
        dwr.noalias() = colm.transpose() * dym;
      } else {
        dwr.noalias() += colm.transpose() * dym;
      }
      ColumnSums(dyc, rows, out_c_, /*accumulate=*/s0 != 0, db);
    }
#if FEDSIM_DIRECT_CONV
    if (dx != nullptr && direct_dx) {
      // d loss / d x is the full convolution of dy with the flipped kernel.
      for (int s = 0; s < count; ++s) {
        const float* dys = dyc + s * out_per_example;
        PadRows(dys, in_.height, in_.width, out_c_, k_, k_ - 1 - pad_, nullptr, &pad_buf_);
        DirectConv(pad_buf_.data(), in_.height, in_.width, out_c_, in_.channels, k_,
                   k_ - 1 - pad_, wflip_.data(), nullptr, Activation::kNone,
                   dx + static_cast<size_t>(s0 + s) * in_dim);
      }
      continue;
    }
#endif
    if (dx != nullptr) {
      const size_t need = static_cast<size_t>(rows) * patch_;
      if (dcol_.size() < need) dcol_.resize(need);
      MatMap dcolm(dcol_.data(), rows, patch_);
      dcolm.noalias() = dym * wm.transpose();
      Col2Im(count, dx + static_cast<size_t>(s0) * in_dim);
    }
  }
  if (dw_col && want_params) {
    TransposeBiasActivate(dwtmp_.data(), patch_, out_c_, nullptr, Activation::kNone, dparams);
  }
}

}  // namespace FEDSIM_NUMERIC_NS
}  // namespace fedsim
