// Numeric modes: which compiled copy of the kernels runs a model, whether this
// host can run it, and the fingerprint that names what its bits depend on.
//
// A model's bits depend on more than its code and inputs: the instruction set
// the kernels were compiled for (AVX-512 and AVX2 kernels sum in different
// orders), the GEMM blocking (Eigen derives the depth of each partial sum
// from the cache sizes the CPU reports at run time, so a 32x3136 by 3136x512
// product differs between a 32 KiB-L1 Xeon and a 48 KiB-L1 EPYC), and exp/log
// (glibc picks an implementation per CPU). Hence two copies of the numeric
// kernels in every binary (ml/variant_namespace.h):
//
//   kNative        the build's flags (-march=native unless FEDSIM_NATIVE=OFF),
//                  Eigen's cache-size heuristic, the AVX-512 direct
//                  convolution where compiled, the system libm. Fastest;
//                  the same bits only on the same kind of host and build.
//   kReproducible  compiled for x86-64-v3 (AVX2, FMA, BMI1/2, F16C, LZCNT,
//                  MOVBE: Xeons since Haswell, 2013, EPYCs since Zen, 2017),
//                  whatever FEDSIM_NATIVE says; Eigen
//                  renamed (EigenRepro) with fixed GEMM blocking that ignores
//                  the cache sizes; im2col convolutions only; exp/log from
//                  ml/fixed_math.h. The same bits on every x86-64-v3 host for
//                  binaries with equal fingerprints. x86-64-v3 rather than
//                  baseline SSE2: the baseline GEMM is ~3x slower than AVX2
//                  (BENCHMARKS.md), and a host without AVX2 is refused with a
//                  clear message instead of computing other bits slowly.
//
// The SGD step (ml/sgd.cc) is shared by both modes: it is elementwise with
// every fused multiply-add written out (std::fma), so no compiler flag or
// vector width changes its bits.
//
// Thread safety: every function is thread-safe except
// SetEigenCacheSizesForTesting (no model may be running).
#ifndef FEDSIM_ML_NUMERIC_H_
#define FEDSIM_ML_NUMERIC_H_

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "ml/model.h"

namespace fedsim {

// OK when this binary and this host can run models in `mode`: kNative
// always; kReproducible in builds that contain the reproducible copy (x86-64
// with a compiler that knows -march=x86-64-v3) on a CPU with every x86-64-v3
// extension. FailedPrecondition naming what is missing and the fix otherwise.
absl::Status CheckNumericSupport(ModelConfig::Numeric mode);

// One x86-64-v3 extension and whether the CPU has it.
struct CpuFeature {
  std::string_view name;  // as in /proc/cpuinfo's flags, e.g. "avx2"
  bool present = false;
};

// The x86-64-v3 extensions and whether this CPU (and OS, for AVX state) has
// each; all absent off x86-64.
std::vector<CpuFeature> ReproducibleCpuFeatures();

// The host half of CheckNumericSupport(kReproducible), on a given list (so
// that tests can refuse a CPU they do not have).
absl::Status CheckReproducibleCpu(std::span<const CpuFeature> features);

// One line naming everything, besides the code and the inputs, that a model's
// bits depend on in config.numeric's mode, as "key=value; ..." with keys
//   mode, isa (instruction path), gemm (Eigen version and blocking: the
//   fixed sizes, or the cache sizes Eigen reads on this host), conv, libm,
//   compiler, flags (the copy's compile flags).
// Processes with equal fingerprints (and equal build ids) compute equal bits.
// In kReproducible mode the line names nothing about the host, so it is the
// same on every x86-64-v3 host for binaries built alike.
std::string NumericFingerprint(const ModelConfig& config);

// The cache sizes (bytes) that `mode`'s copy of Eigen uses in its GEMM
// blocking heuristic, as it read them from the CPU or as last set. The
// reproducible copy's blocking ignores them; tests set them to prove it.
struct EigenCacheSizes {
  std::ptrdiff_t l1 = 0;
  std::ptrdiff_t l2 = 0;
  std::ptrdiff_t l3 = 0;
};
EigenCacheSizes EigenCacheSizesOf(ModelConfig::Numeric mode);
// Eigen::setCpuCacheSizes on `mode`'s copy of Eigen. For tests.
// REQUIRES: no model is running; the mode is supported.
void SetEigenCacheSizesForTesting(ModelConfig::Numeric mode, const EigenCacheSizes& sizes);

}  // namespace fedsim

#endif  // FEDSIM_ML_NUMERIC_H_
