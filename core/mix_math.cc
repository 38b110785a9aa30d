#include "core/mix_math.h"

#include <algorithm>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace fedsim {
namespace {

// MixTile(sources, weights, count, j, dst): dst[j + k] = sum_e weights[e] *
// sources[e][j + k] for k < kTile, with the kTile accumulators in registers
// (enough independent chains to cover the multiply-add latency). Written
// with intrinsics where available: left to itself, the auto-vectorizer turned
// the plain loops into gathers across neighbours with the accumulators on the
// stack. Every variant does acc = fma(w, y, acc) per element from 0 in entry
// order, which equals acc + w * y because the product is exact, so all give
// the same bits.
#if defined(__AVX512F__)
// GCC 12 warns of "uninitialized" pass-through operands inside its own
// avx512fintrin.h when these conversions are inlined (a false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
constexpr size_t kTile = 64;  // 8 registers of 8 doubles

inline void MixTile(const float* const* sources, const float* weights, size_t count, size_t j,
                    float* dst) {
  __m512d a[8];
  for (__m512d& v : a) v = _mm512_setzero_pd();
  for (size_t e = 0; e < count; ++e) {
    const float* src = sources[e] + j;
    const __m512d w = _mm512_set1_pd(weights[e]);
    for (int k = 0; k < 8; ++k) {
      a[k] = _mm512_fmadd_pd(w, _mm512_cvtps_pd(_mm256_loadu_ps(src + 8 * k)), a[k]);
    }
  }
  for (int k = 0; k < 8; ++k) _mm256_storeu_ps(dst + j + 8 * k, _mm512_cvtpd_ps(a[k]));
}
#elif defined(__AVX2__) && defined(__FMA__)
constexpr size_t kTile = 32;  // 8 registers of 4 doubles

inline void MixTile(const float* const* sources, const float* weights, size_t count, size_t j,
                    float* dst) {
  __m256d a[8];
  for (__m256d& v : a) v = _mm256_setzero_pd();
  for (size_t e = 0; e < count; ++e) {
    const float* src = sources[e] + j;
    const __m256d w = _mm256_set1_pd(weights[e]);
    for (int k = 0; k < 8; ++k) {
      a[k] = _mm256_fmadd_pd(w, _mm256_cvtps_pd(_mm_loadu_ps(src + 4 * k)), a[k]);
    }
  }
  for (int k = 0; k < 8; ++k) _mm_storeu_ps(dst + j + 4 * k, _mm256_cvtpd_ps(a[k]));
}
#else
constexpr size_t kTile = 16;

inline void MixTile(const float* const* sources, const float* weights, size_t count, size_t j,
                    float* dst) {
  double a[kTile] = {};
  for (size_t e = 0; e < count; ++e) {
    const float* src = sources[e] + j;
    const double w = weights[e];
    for (size_t k = 0; k < kTile; ++k) a[k] += w * static_cast<double>(src[k]);
  }
  for (size_t k = 0; k < kTile; ++k) dst[j + k] = static_cast<float>(a[k]);
}
#endif

}  // namespace

// dst[j] for j in [begin, end): whole tiles, then the remainder one by one
// with the same operations per element, so the tiling does not show.
void MixInto(const float* const* sources, const float* weights, size_t count, size_t begin,
             size_t end, float* dst) {
  size_t j = begin;
  for (; j + kTile <= end; j += kTile) MixTile(sources, weights, count, j, dst);
  for (; j < end; ++j) {
    double acc = 0;
    for (size_t e = 0; e < count; ++e) {
      acc += static_cast<double>(weights[e]) * static_cast<double>(sources[e][j]);
    }
    dst[j] = static_cast<float>(acc);
  }
}

void MixRow(std::span<const float* const> sources, std::span<const float> weights,
            std::span<float> z) {
  MixInto(sources.data(), weights.data(), std::min(sources.size(), weights.size()), 0, z.size(),
          z.data());
}

void AddToModelSum(std::span<const float> x, std::span<double> sum) {
  const size_t p = std::min(x.size(), sum.size());
  for (size_t j = 0; j < p; ++j) sum[j] += x[j];
}

double AddSquaredDistance(std::span<const float> x, std::span<const double> mean, double dist) {
  const size_t p = std::min(x.size(), mean.size());
  for (size_t j = 0; j < p; ++j) dist += (x[j] - mean[j]) * (x[j] - mean[j]);
  return dist;
}

}  // namespace fedsim
