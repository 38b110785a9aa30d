// Internal to ml/: the entry points of the two compiled copies of the numeric
// kernels (ml/variant_namespace.h). Each copy defines its own set, in
// layer_stack_model.cc and numeric_variant.cc; ml/model.cc and ml/numeric.cc
// pick one by ModelConfig::numeric. The reproducible copy exists only where
// FEDSIM_HAVE_REPRODUCIBLE_NUMERIC is defined (x86-64 builds).
//
// Only plain data crosses between the copies (see variant_namespace.h on
// why nothing may be shared).
#ifndef FEDSIM_ML_NUMERIC_VARIANT_H_
#define FEDSIM_ML_NUMERIC_VARIANT_H_

#include <cstddef>
#include <memory>

#include "ml/model.h"

namespace fedsim {

// What one copy was built with, for NumericFingerprint. Static strings.
struct NumericCopyInfo {
  const char* simd = "";      // the x86 extensions compiled for, "fma avx2 avx ..."
  const char* blocking = "";  // how the GEMM blocking is chosen
  const char* conv = "";      // the convolution kernels
  const char* libm = "";      // where exp and log come from
  const char* flags = "";     // the copy's compile flags
  int eigen_version[3] = {0, 0, 0};
};

// Every declaration of the two namespaces is inline (as in
// variant_namespace.h), so the order of includes never matters; callers
// always qualify (native::, repro::). The two lists are the same.

inline namespace native {
// The layer-stack model of `config`. REQUIRES: config passed NewModel's checks.
std::unique_ptr<Model> NewLayerStackModel(const ModelConfig& config);
NumericCopyInfo CopyInfo();
// The cache sizes (bytes) this copy's Eigen uses in its GEMM blocking
// heuristic: read from the CPU at first use, or as last set.
void GetEigenCacheSizes(std::ptrdiff_t* l1, std::ptrdiff_t* l2, std::ptrdiff_t* l3);
void SetEigenCacheSizes(std::ptrdiff_t l1, std::ptrdiff_t l2, std::ptrdiff_t l3);
}  // namespace native

inline namespace repro {
std::unique_ptr<Model> NewLayerStackModel(const ModelConfig& config);
NumericCopyInfo CopyInfo();
void GetEigenCacheSizes(std::ptrdiff_t* l1, std::ptrdiff_t* l2, std::ptrdiff_t* l3);
void SetEigenCacheSizes(std::ptrdiff_t l1, std::ptrdiff_t l2, std::ptrdiff_t l3);
}  // namespace repro

}  // namespace fedsim

#endif  // FEDSIM_ML_NUMERIC_VARIANT_H_
