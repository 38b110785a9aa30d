#include "ml/numeric.h"

#include <cmath>
#include <string>
#include <vector>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ml/model.h"
#include "ml/sgd.h"
#include "util/hash.h"
#include "util/rng.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Numeric = ModelConfig::Numeric;

// Two cache configurations far apart: Eigen's heuristic gives different GEMM
// depth blocks for them (kc ~ 64 against ~ 288 for float on AVX-512, so a
// 784- or 3136-deep product is summed in different pieces).
constexpr EigenCacheSizes kSmallCaches{16 << 10, 256 << 10, 2 << 20};
constexpr EigenCacheSizes kLargeCaches{64 << 10, 2 << 20, 32 << 20};

bool ReproducibleAvailable() { return CheckNumericSupport(Numeric::kReproducible).ok(); }

// Sets the cache sizes both copies of Eigen see, and restores them on exit.
class ScopedCacheSizes {
 public:
  explicit ScopedCacheSizes(const EigenCacheSizes& sizes)
      : native_(EigenCacheSizesOf(Numeric::kNative)),
        repro_(EigenCacheSizesOf(Numeric::kReproducible)) {
    SetEigenCacheSizesForTesting(Numeric::kNative, sizes);
    if (ReproducibleAvailable()) SetEigenCacheSizesForTesting(Numeric::kReproducible, sizes);
  }
  ~ScopedCacheSizes() {
    SetEigenCacheSizesForTesting(Numeric::kNative, native_);
    if (ReproducibleAvailable()) SetEigenCacheSizesForTesting(Numeric::kReproducible, repro_);
  }

 private:
  EigenCacheSizes native_;
  EigenCacheSizes repro_;
};

ModelConfig Mlp(Numeric numeric) {
  ModelConfig c;  // 784-200-200-10
  c.numeric = numeric;
  return c;
}

ModelConfig Cnn(Numeric numeric) {
  ModelConfig c;  // McMahan's CNN: its FC layer is the 32x3136 by 3136x512 product
  c.kind = ModelConfig::Kind::kCnn;
  c.numeric = numeric;
  return c;
}

// SHA-256 of the parameters after a few SGD steps (momentum, batch 32) on
// seeded random data, and of every step's loss.
std::string TrainedHash(const ModelConfig& config, int steps) {
  absl::StatusOr<std::unique_ptr<Model>> made = NewModel(config);
  EXPECT_TRUE(made.ok()) << made.status();
  if (!made.ok()) return "";
  Model& model = **made;
  std::vector<float> params(model.NumParams());
  model.Init(7, params);
  Sgd sgd(SgdOptions{.lr = 0.05, .momentum = 0.9}, params.size());
  constexpr int kBatch = 32;
  Rng rng(11, "numeric_test");
  std::vector<float> x(static_cast<size_t>(kBatch) * config.input_dim());
  std::vector<int32_t> y(kBatch);
  Sha256 h;
  for (int s = 0; s < steps; ++s) {
    for (float& v : x) v = static_cast<float>(rng.Uniform());
    for (int32_t& l : y) l = static_cast<int32_t>(rng.UniformInt(config.num_classes));
    const float loss =
        model.ForwardBackwardStep(params, BatchView{x.data(), y.data(), kBatch}, sgd);
    h.Update(&loss, sizeof loss);
  }
  h.Update(params.data(), params.size() * sizeof(float));
  return h.FinishHex();
}

std::string HashUnder(const EigenCacheSizes& caches, const ModelConfig& config, int steps) {
  ScopedCacheSizes scoped(caches);
  return TrainedHash(config, steps);
}

// The effect the reproducible mode removes, at its source: Eigen's float GEMM
// changes its bits with the cache sizes it is told.
TEST(NumericTest, NativeEigenGemmDependsOnCacheSizes) {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Rng rng(3, "gemm");
  Mat a(32, 3136), b(3136, 512);
  for (Eigen::Index i = 0; i < a.size(); ++i) a.data()[i] = static_cast<float>(rng.Uniform(-1, 1));
  for (Eigen::Index i = 0; i < b.size(); ++i) b.data()[i] = static_cast<float>(rng.Uniform(-1, 1));
  Mat small, large;
  {
    ScopedCacheSizes scoped(kSmallCaches);
    small.noalias() = a * b;
  }
  {
    ScopedCacheSizes scoped(kLargeCaches);
    large.noalias() = a * b;
  }
  EXPECT_NE(Sha256Hex({small.data(), static_cast<size_t>(small.size())}),
            Sha256Hex({large.data(), static_cast<size_t>(large.size())}));
  EXPECT_LT((small - large).cwiseAbs().maxCoeff(), 1e-3f);  // the same product, other bits
}

// The control for the tests below: in native mode the cache sizes Eigen sees
// change the trained bits, so a hash comparison can detect the effect.
TEST(NumericTest, NativeTrainingDependsOnCacheSizes) {
  EXPECT_NE(HashUnder(kSmallCaches, Mlp(Numeric::kNative), 3),
            HashUnder(kLargeCaches, Mlp(Numeric::kNative), 3));
  EXPECT_NE(HashUnder(kSmallCaches, Cnn(Numeric::kNative), 2),
            HashUnder(kLargeCaches, Cnn(Numeric::kNative), 2));
}

TEST(NumericTest, ReproducibleTrainingIgnoresCacheSizes) {
  if (!ReproducibleAvailable()) {
    GTEST_SKIP() << CheckNumericSupport(Numeric::kReproducible).message();
  }
  const std::string mlp = HashUnder(kSmallCaches, Mlp(Numeric::kReproducible), 3);
  EXPECT_EQ(mlp, HashUnder(kLargeCaches, Mlp(Numeric::kReproducible), 3));
  EXPECT_EQ(mlp, TrainedHash(Mlp(Numeric::kReproducible), 3));  // the host's own sizes
  const std::string cnn = HashUnder(kSmallCaches, Cnn(Numeric::kReproducible), 2);
  EXPECT_EQ(cnn, HashUnder(kLargeCaches, Cnn(Numeric::kReproducible), 2));
  EXPECT_EQ(cnn, TrainedHash(Cnn(Numeric::kReproducible), 2));
}

// The reproducible copy computes the same function: gradients agree with the
// native copy's to float rounding (the sums run in other orders).
TEST(NumericTest, ReproducibleGradientsMatchNative) {
  if (!ReproducibleAvailable()) {
    GTEST_SKIP() << CheckNumericSupport(Numeric::kReproducible).message();
  }
  for (const ModelConfig& base : {Mlp(Numeric::kNative), Cnn(Numeric::kNative)}) {
    ModelConfig repro_config = base;
    repro_config.numeric = Numeric::kReproducible;
    auto native = NewModel(base).value();
    auto repro = NewModel(repro_config).value();
    ASSERT_EQ(native->NumParams(), repro->NumParams());
    std::vector<float> params(native->NumParams()), params_repro(repro->NumParams());
    native->Init(5, params);
    repro->Init(5, params_repro);
    EXPECT_EQ(params, params_repro) << "initialization is elementwise and should agree";
    const int n = 8;
    Rng rng(9, "grad");
    std::vector<float> x(static_cast<size_t>(n) * base.input_dim());
    for (float& v : x) v = static_cast<float>(rng.Uniform());
    std::vector<int32_t> y(n);
    for (int32_t& l : y) l = static_cast<int32_t>(rng.UniformInt(base.num_classes));
    std::vector<float> g_native(params.size()), g_repro(params.size());
    std::vector<float> dx_native(x.size()), dx_repro(x.size());
    const BatchView batch{x.data(), y.data(), n};
    const float loss_native = native->ForwardBackward(params, batch, g_native, dx_native);
    const float loss_repro = repro->ForwardBackward(params, batch, g_repro, dx_repro);
    EXPECT_NEAR(loss_native, loss_repro, 1e-5f * std::abs(loss_native)) << base.ToString();
    double scale = 0.0, diff = 0.0;
    for (size_t i = 0; i < g_native.size(); ++i) {
      scale = std::max(scale, std::abs(static_cast<double>(g_native[i])));
      diff = std::max(diff, std::abs(static_cast<double>(g_native[i]) - g_repro[i]));
    }
    EXPECT_GT(scale, 0.0);
    EXPECT_LT(diff, 1e-4 * scale) << base.ToString();
    for (size_t i = 0; i < dx_native.size(); ++i) {
      ASSERT_NEAR(dx_native[i], dx_repro[i], 1e-4 * scale) << base.ToString() << " dx " << i;
    }
  }
}

TEST(NumericTest, FingerprintNamesModePathAndBlocking) {
  const std::string native = NumericFingerprint(Mlp(Numeric::kNative));
  EXPECT_THAT(native, HasSubstr("mode=native"));
  EXPECT_THAT(native, HasSubstr("gemm=eigen 3."));
  EXPECT_THAT(native, HasSubstr("dense batches <= 16: ordered fma"));
  EXPECT_THAT(native, HasSubstr("compiler="));
  EXPECT_THAT(native, HasSubstr("flags="));
  const EigenCacheSizes caches = EigenCacheSizesOf(Numeric::kNative);
  EXPECT_THAT(native, HasSubstr(absl::StrCat("l1=", caches.l1 / 1024, "K")));
  if (!ReproducibleAvailable()) return;
  const std::string repro = NumericFingerprint(Mlp(Numeric::kReproducible));
  EXPECT_THAT(repro, HasSubstr("mode=reproducible"));
  EXPECT_THAT(repro, HasSubstr("isa=x86-64-v3"));
  EXPECT_THAT(repro, HasSubstr("-march=x86-64-v3"));
  EXPECT_THAT(repro, HasSubstr("fixed kc<="));
  EXPECT_THAT(repro, HasSubstr("libm=fedsim fixed"));
  EXPECT_THAT(repro, Not(HasSubstr("avx512")));
}

// The native fingerprint follows the cache sizes Eigen reads; the
// reproducible one names nothing about the host.
TEST(NumericTest, OnlyTheNativeFingerprintFollowsCacheSizes) {
  std::string native_small, native_large, repro_small, repro_large;
  {
    ScopedCacheSizes scoped(kSmallCaches);
    native_small = NumericFingerprint(Mlp(Numeric::kNative));
    repro_small = NumericFingerprint(Mlp(Numeric::kReproducible));
  }
  {
    ScopedCacheSizes scoped(kLargeCaches);
    native_large = NumericFingerprint(Mlp(Numeric::kNative));
    repro_large = NumericFingerprint(Mlp(Numeric::kReproducible));
  }
  EXPECT_NE(native_small, native_large);
  EXPECT_EQ(repro_small, repro_large);
}

TEST(NumericTest, RefusesACpuWithoutX8664V3) {
  const CpuFeature complete[] = {{"avx2", true}, {"fma", true}, {"bmi2", true}};
  EXPECT_TRUE(CheckReproducibleCpu(complete).ok());
  const CpuFeature old_cpu[] = {{"avx2", false}, {"fma", false}, {"bmi2", true}};
  const absl::Status s = CheckReproducibleCpu(old_cpu);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("lacks avx2, fma"));
  EXPECT_THAT(s.message(), HasSubstr("mode: NATIVE"));  // names the fix
}

TEST(NumericTest, HostFeaturesAgreeWithSupport) {
  bool all = true;
  for (const CpuFeature& f : ReproducibleCpuFeatures()) all = all && f.present;
#if defined(FEDSIM_HAVE_REPRODUCIBLE_NUMERIC)  // x86-64 builds: the CPU decides
  EXPECT_EQ(ReproducibleAvailable(), all);
#else
  if (!all) EXPECT_FALSE(ReproducibleAvailable());
#endif
  EXPECT_TRUE(CheckNumericSupport(Numeric::kNative).ok());
}

TEST(NumericTest, NewModelReportsAnUnavailableMode) {
  absl::StatusOr<std::unique_ptr<Model>> m = NewModel(Mlp(Numeric::kReproducible));
  if (ReproducibleAvailable()) {
    EXPECT_TRUE(m.ok()) << m.status();
  } else {
    EXPECT_EQ(m.status().code(), absl::StatusCode::kFailedPrecondition);
  }
}

}  // namespace
}  // namespace fedsim
