// Compiled into both copies of the numeric kernels: what the copy was built
// with, and its copy of Eigen's cache-size setting.
#include "ml/numeric_variant.h"

#include "Eigen/Core"
#include "ml/variant_namespace.h"

// The copy's compile flags, as ml/CMakeLists.txt passes them.
#ifndef FEDSIM_NUMERIC_FLAGS
#define FEDSIM_NUMERIC_FLAGS "unknown"
#endif

#define FEDSIM_STR2(x) #x
#define FEDSIM_STR(x) FEDSIM_STR2(x)

namespace fedsim {
inline namespace FEDSIM_NUMERIC_NS {
namespace {

// The x86 extensions this copy was compiled with (what the compiler and Eigen
// may use). Eigen's own SimdInstructionSetsInUse() omits AVX2 and FMA.
constexpr const char* kSimd =
    ""
#if defined(__AVX512F__)
    "avx512f "
#endif
#if defined(__AVX512DQ__)
    "avx512dq "
#endif
#if defined(__AVX512BW__)
    "avx512bw "
#endif
#if defined(__AVX512VL__)
    "avx512vl "
#endif
#if defined(__FMA__)
    "fma "
#endif
#if defined(__AVX2__)
    "avx2 "
#endif
#if defined(__AVX__)
    "avx "
#endif
#if defined(__SSE4_2__)
    "sse4.2 "
#endif
#if defined(__SSE2__)
    "sse2"
#endif
    ;

}  // namespace

NumericCopyInfo CopyInfo() {
  NumericCopyInfo info;
  info.simd = kSimd;
#if defined(EIGEN_TEST_SPECIFIC_BLOCKING_SIZES) && EIGEN_TEST_SPECIFIC_BLOCKING_SIZES
  info.blocking = "fixed kc<=" FEDSIM_STR(EIGEN_TEST_SPECIFIC_BLOCKING_SIZE_K) " mc<=" FEDSIM_STR(
      EIGEN_TEST_SPECIFIC_BLOCKING_SIZE_M) " nc<=" FEDSIM_STR(EIGEN_TEST_SPECIFIC_BLOCKING_SIZE_N);
#else
  info.blocking = "from cache sizes";
#endif
#if FEDSIM_NUMERIC_REPRODUCIBLE
  info.conv = "im2col+gemm";
  info.libm = "fedsim fixed exp/log";
#else
#if defined(__AVX512F__)
  info.conv = "avx512 direct+im2col+gemm";
#else
  info.conv = "im2col+gemm";
#endif
  info.libm = "system libm (per-CPU dispatch)";
#endif
  info.flags = FEDSIM_NUMERIC_FLAGS;
  info.eigen_version[0] = EIGEN_WORLD_VERSION;
  info.eigen_version[1] = EIGEN_MAJOR_VERSION;
  info.eigen_version[2] = EIGEN_MINOR_VERSION;
  return info;
}

void GetEigenCacheSizes(std::ptrdiff_t* l1, std::ptrdiff_t* l2, std::ptrdiff_t* l3) {
  *l1 = Eigen::l1CacheSize();
  *l2 = Eigen::l2CacheSize();
  *l3 = Eigen::l3CacheSize();
}

void SetEigenCacheSizes(std::ptrdiff_t l1, std::ptrdiff_t l2, std::ptrdiff_t l3) {
  Eigen::setCpuCacheSizes(l1, l2, l3);
}

}  // namespace FEDSIM_NUMERIC_NS
}  // namespace fedsim
