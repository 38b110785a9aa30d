#include "ml/numeric.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ml/numeric_variant.h"

#if defined(__GLIBC__)
#include <gnu/libc-version.h>
#endif
#if defined(__x86_64__)
#include <cpuid.h>
#endif

// Set by ml/CMakeLists.txt: the architecture GCC resolves -march=native to
// (empty without FEDSIM_NATIVE or when not known), and the reproducible
// copy's -march value.
#ifndef FEDSIM_NATIVE_MARCH
#define FEDSIM_NATIVE_MARCH ""
#endif
#ifndef FEDSIM_REPRO_MARCH
#define FEDSIM_REPRO_MARCH "x86-64-v3"
#endif

namespace fedsim {
namespace {

std::string CompilerName() {
#if defined(__clang__)
  return absl::StrCat("clang ", __clang_major__, ".", __clang_minor__, ".", __clang_patchlevel__);
#elif defined(__GNUC__)
  return absl::StrCat("gcc ", __GNUC__, ".", __GNUC_MINOR__, ".", __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

std::string Kib(std::ptrdiff_t bytes) { return absl::StrCat(bytes / 1024, "K"); }

#if defined(__x86_64__)
// Bit `bit` of ECX for CPUID `leaf`. For the features clang 16's
// __builtin_cpu_supports does not know ("f16c", "lzcnt", "movbe"), so the
// file builds with clang (scripts/fuzz) as well as GCC.
bool CpuidEcx(unsigned leaf, unsigned bit) {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(leaf, &a, &b, &c, &d) != 0 && ((c >> bit) & 1u) != 0;
}
#endif

}  // namespace

absl::Status CheckReproducibleCpu(std::span<const CpuFeature> features) {
  std::vector<std::string> missing;
  for (const CpuFeature& f : features) {
    if (!f.present) missing.emplace_back(f.name);
  }
  if (missing.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "numeric mode REPRODUCIBLE runs kernels compiled for ", FEDSIM_REPRO_MARCH,
      ", but this CPU lacks ", absl::StrJoin(missing, ", "),
      "; run this worker on an x86-64-v3 host (Intel Haswell / AMD Zen or newer) or set "
      "numeric { mode: NATIVE } (results then depend on the host)"));
}

std::vector<CpuFeature> ReproducibleCpuFeatures() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return {
      {"avx", __builtin_cpu_supports("avx") != 0},
      {"avx2", __builtin_cpu_supports("avx2") != 0},
      {"bmi1", __builtin_cpu_supports("bmi") != 0},
      {"bmi2", __builtin_cpu_supports("bmi2") != 0},
      {"f16c", CpuidEcx(1, 29)},
      {"fma", __builtin_cpu_supports("fma") != 0},
      {"lzcnt", CpuidEcx(0x80000001, 5)},
      {"movbe", CpuidEcx(1, 22)},
  };
#else
  return {{"x86-64", false}};
#endif
}

absl::Status CheckNumericSupport(ModelConfig::Numeric mode) {
  switch (mode) {
    case ModelConfig::Numeric::kNative:
      return absl::OkStatus();
    case ModelConfig::Numeric::kReproducible: {
#if defined(FEDSIM_HAVE_REPRODUCIBLE_NUMERIC)
      const std::vector<CpuFeature> features = ReproducibleCpuFeatures();
      return CheckReproducibleCpu(features);
#else
      return absl::FailedPreconditionError(
          "numeric mode REPRODUCIBLE is not compiled into this binary (it needs an x86-64 "
          "build with a compiler that knows -march=x86-64-v3, e.g. GCC >= 11); use "
          "numeric { mode: NATIVE }");
#endif
    }
  }
  return absl::InvalidArgumentError("unknown numeric mode");
}

std::string NumericFingerprint(const ModelConfig& config) {
  const bool repro = config.numeric == ModelConfig::Numeric::kReproducible;
  NumericCopyInfo info;
  std::string blocking;
  std::string isa;
  std::string libm;
  if (!repro) {
    info = native::CopyInfo();
    std::ptrdiff_t l1 = 0, l2 = 0, l3 = 0;
    native::GetEigenCacheSizes(&l1, &l2, &l3);
    blocking = absl::StrCat(info.blocking, " l1=", Kib(l1), " l2=", Kib(l2), " l3=", Kib(l3));
    const std::string march = FEDSIM_NATIVE_MARCH;
    isa = absl::StrCat(march.empty() ? "build default" : march, " (", info.simd, ")");
    libm = info.libm;
#if defined(__GLIBC__)
    libm = absl::StrCat("glibc ", gnu_get_libc_version(), " ", libm);
#endif
  } else {
#if defined(FEDSIM_HAVE_REPRODUCIBLE_NUMERIC)
    info = repro::CopyInfo();
    blocking = info.blocking;
    isa = absl::StrCat(FEDSIM_REPRO_MARCH, " (", info.simd, ")");
    libm = info.libm;
#else
    return "mode=reproducible; unavailable in this build";
#endif
  }
  return absl::StrCat("mode=", repro ? "reproducible" : "native", "; isa=", isa, "; gemm=eigen ",
                      info.eigen_version[0], ".", info.eigen_version[1], ".", info.eigen_version[2],
                      " ", blocking, " (dense batches <= 16: ordered fma, ml/small_gemm.h)",
                      "; conv=", info.conv, "; libm=", libm,
                      "; sgd=explicit fma; compiler=", CompilerName(), "; flags=", info.flags);
}

EigenCacheSizes EigenCacheSizesOf(ModelConfig::Numeric mode) {
  EigenCacheSizes s;
  if (mode == ModelConfig::Numeric::kReproducible) {
#if defined(FEDSIM_HAVE_REPRODUCIBLE_NUMERIC)
    repro::GetEigenCacheSizes(&s.l1, &s.l2, &s.l3);
#endif
  } else {
    native::GetEigenCacheSizes(&s.l1, &s.l2, &s.l3);
  }
  return s;
}

void SetEigenCacheSizesForTesting(ModelConfig::Numeric mode, const EigenCacheSizes& sizes) {
  if (mode == ModelConfig::Numeric::kReproducible) {
#if defined(FEDSIM_HAVE_REPRODUCIBLE_NUMERIC)
    repro::SetEigenCacheSizes(sizes.l1, sizes.l2, sizes.l3);
#endif
  } else {
    native::SetEigenCacheSizes(sizes.l1, sizes.l2, sizes.l3);
  }
}

}  // namespace fedsim
