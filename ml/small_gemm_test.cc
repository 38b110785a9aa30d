#include "ml/small_gemm.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "gtest/gtest.h"
#include "ml/model.h"
#include "ml/numeric.h"
#include "ml/sgd.h"
#include "util/rng.h"

namespace fedsim {
namespace {

struct Shape {
  int k;  // depth of the forward product (rows of the weight gradient)
  int o;  // outputs per row
};

// Ragged chunks (1, 7, 10, 17, 33), exact multiples of 16 and 32, the MLP's
// 200-wide layers, and a deep one.
const Shape kShapes[] = {{1, 1},   {5, 7},   {33, 10},  {17, 33},
                         {64, 32}, {48, 16}, {64, 200}, {300, 48}};

std::vector<float> RandomFloats(Rng& rng, size_t n) {
  std::vector<float> v(n);
  for (float& f : v) f = static_cast<float>(rng.Uniform(-1.0, 1.0));
  return v;
}

bool SameBits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// The contract of XTimesW, written out: one fused multiply-add per term,
// ascending k, from 0.
TEST(SmallGemmTest, ForwardIsOneFmaChainPerOutput) {
  Rng rng(3, "small_gemm_test");
  for (const Shape& s : kShapes) {
    for (int n = 1; n <= small_gemm::kMaxBatch; ++n) {
      const size_t ldx = static_cast<size_t>(s.k) + 3;  // rows of x further apart than k
      const std::vector<float> x = RandomFloats(rng, n * ldx);
      const std::vector<float> w = RandomFloats(rng, static_cast<size_t>(s.k) * s.o);
      std::vector<float> y(static_cast<size_t>(n) * s.o + 5, 42.0f);  // 5 guard values
      small_gemm::XTimesW(x.data(), ldx, n, w.data(), s.k, s.o, y.data());
      for (int b = 0; b < n; ++b) {
        for (int o = 0; o < s.o; ++o) {
          float want = 0.0f;
          for (int k = 0; k < s.k; ++k) want = std::fma(x[b * ldx + k], w[k * s.o + o], want);
          ASSERT_TRUE(SameBits(y[b * s.o + o], want))
              << "k=" << s.k << " o=" << s.o << " n=" << n << " at (" << b << ", " << o
              << "): " << y[b * s.o + o] << " want " << want;
        }
      }
      for (size_t i = static_cast<size_t>(n) * s.o; i < y.size(); ++i) ASSERT_EQ(y[i], 42.0f);
    }
  }
}

// The contract of XtTimesDy: ascending batch row, from 0.
TEST(SmallGemmTest, WeightGradientIsOneFmaChainPerOutput) {
  Rng rng(5, "small_gemm_test");
  for (const Shape& s : kShapes) {
    for (int n = 1; n <= small_gemm::kMaxBatch; ++n) {
      const size_t ldx = static_cast<size_t>(s.k) + 2;
      const std::vector<float> x = RandomFloats(rng, n * ldx);
      const std::vector<float> dy = RandomFloats(rng, static_cast<size_t>(n) * s.o);
      std::vector<float> g(static_cast<size_t>(s.k) * s.o + 5, 42.0f);
      small_gemm::XtTimesDy(x.data(), ldx, n, s.k, dy.data(), s.o, g.data());
      for (int k = 0; k < s.k; ++k) {
        for (int o = 0; o < s.o; ++o) {
          float want = 0.0f;
          for (int b = 0; b < n; ++b) want = std::fma(x[b * ldx + k], dy[b * s.o + o], want);
          ASSERT_TRUE(SameBits(g[k * s.o + o], want))
              << "k=" << s.k << " o=" << s.o << " n=" << n << " at (" << k << ", " << o << ")";
        }
      }
      for (size_t i = static_cast<size_t>(s.k) * s.o; i < g.size(); ++i) ASSERT_EQ(g[i], 42.0f);
    }
  }
}

// The contract of DyTimesWt (the input gradient of a tile of W's rows):
// ascending output column, from 0, written rows ldx apart.
TEST(SmallGemmTest, InputGradientIsOneFmaChainPerOutput) {
  Rng rng(7, "small_gemm_test");
  for (const Shape& s : kShapes) {  // s.k rows of W in the tile, s.o outputs
    for (int n = 1; n <= small_gemm::kMaxBatch; ++n) {
      const std::vector<float> w = RandomFloats(rng, static_cast<size_t>(s.k) * s.o);
      const std::vector<float> dy = RandomFloats(rng, static_cast<size_t>(n) * s.o);
      std::vector<float> scratch(static_cast<size_t>(s.o + s.k) * n);
      const size_t ldx = static_cast<size_t>(s.k) + 4;  // the tile is part of a wider dx
      std::vector<float> dx(n * ldx, 42.0f);
      small_gemm::DyTimesWt(dy.data(), n, s.o, w.data(), s.k, dx.data() + 1, ldx, scratch.data());
      for (int b = 0; b < n; ++b) {
        for (size_t c = 0; c < ldx; ++c) {
          const float got = dx[b * ldx + c];
          if (c < 1 || c > static_cast<size_t>(s.k)) {  // outside the tile: untouched
            ASSERT_EQ(got, 42.0f) << "k=" << s.k << " o=" << s.o << " n=" << n;
            continue;
          }
          const int r = static_cast<int>(c) - 1;
          float want = 0.0f;
          for (int j = 0; j < s.o; ++j) want = std::fma(dy[b * s.o + j], w[r * s.o + j], want);
          ASSERT_TRUE(SameBits(got, want))
              << "k=" << s.k << " o=" << s.o << " n=" << n << " at (" << b << ", " << r << ")";
        }
      }
    }
  }
}

// XtTimesDyStep is XtTimesDy followed by Sgd::StepRange, bit for bit, for
// every form of the rule; with velocities that the step flushes (subnormal),
// zero gradients of either sign, and shapes with ragged edges.
TEST(SmallGemmTest, FusedWeightGradientStepIsGradientThenSgdStep) {
  const SgdOptions opts[] = {{.lr = 0.1},
                             {.lr = 0.1, .weight_decay = 1e-2},
                             {.lr = 0.05, .prox_mu = 0.1},
                             {.lr = 0.05, .momentum = 0.9},
                             {.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3, .prox_mu = 0.01}};
  Rng rng(17, "small_gemm_step");
  for (const Shape& s : kShapes) {
    for (const int n : {1, 3, 10, small_gemm::kMaxBatch}) {
      const size_t ldx = static_cast<size_t>(s.k) + 2;
      const size_t count = static_cast<size_t>(s.k) * s.o;
      std::vector<float> x = RandomFloats(rng, n * ldx);
      const std::vector<float> dy = RandomFloats(rng, static_cast<size_t>(n) * s.o);
      // Column 0 of x is zero: its row of the gradient is +0 or -0 terms.
      for (int b = 0; b < n; ++b) x[b * ldx] = b % 2 == 0 ? 0.0f : -0.0f;
      const std::vector<float> w0 = RandomFloats(rng, count + 3);  // 3 elements before ours
      const std::vector<float> anchor = RandomFloats(rng, count + 3);
      for (const SgdOptions& o : opts) {
        Sgd fused(o, count + 3), plain(o, count + 3);
        std::vector<float> w1 = w0, w2 = w0, g(count);
        // Two steps, so that the second starts from velocities; tiny
        // gradients on one row make some of them subnormal.
        for (int step = 0; step < 2; ++step) {
          std::vector<float> xs = x;
          if (step == 0 && s.k > 1) {
            for (int b = 0; b < n; ++b) xs[b * ldx + 1] = 1e-39f;
          }
          small_gemm::XtTimesDyStep(xs.data(), ldx, n, s.k, dy.data(), s.o, *fused.ElementRule(), 3,
                                    w1.data() + 3, anchor.data() + 3);
          small_gemm::XtTimesDy(xs.data(), ldx, n, s.k, dy.data(), s.o, g.data());
          plain.StepRange(3, w2.data() + 3, g.data(), anchor.data() + 3, count);
          for (size_t i = 0; i < w1.size(); ++i) {
            ASSERT_TRUE(SameBits(w1[i], w2[i]))
                << "k=" << s.k << " o=" << s.o << " n=" << n << " lr=" << o.lr
                << " momentum=" << o.momentum << " step " << step << " at " << i << ": " << w1[i]
                << " want " << w2[i];
          }
          // The velocities too (a flushed one moves no weight by an ulp).
          const float* v1 = fused.ElementRule()->velocity;
          const float* v2 = plain.ElementRule()->velocity;
          ASSERT_EQ(v1 == nullptr, o.momentum == 0);
          for (size_t i = 0; v1 != nullptr && i < w1.size(); ++i) {
            ASSERT_TRUE(SameBits(v1[i], v2[i]))
                << "k=" << s.k << " o=" << s.o << " n=" << n << " step " << step
                << " velocity at " << i << ": " << v1[i] << " want " << v2[i];
          }
        }
      }
    }
  }
}

// Because each output's order is fixed, the two compiled copies (the native
// one, AVX-512 on such hosts, and the x86-64-v3 one) give an MLP's logits at
// a small batch with the same bits: its forward pass is these products and
// elementwise bias and ReLU.
TEST(SmallGemmTest, BothNumericCopiesGiveTheSameSmallBatchLogits) {
  if (!CheckNumericSupport(ModelConfig::Numeric::kReproducible).ok()) {
    GTEST_SKIP() << "this binary or host has no reproducible numeric copy: "
                 << CheckNumericSupport(ModelConfig::Numeric::kReproducible).message();
  }
  ModelConfig config;  // 784-200-200-10
  std::vector<float> logits[2];
  int i = 0;
  for (ModelConfig::Numeric mode :
       {ModelConfig::Numeric::kNative, ModelConfig::Numeric::kReproducible}) {
    config.numeric = mode;
    absl::StatusOr<std::unique_ptr<Model>> made = NewModel(config);
    ASSERT_TRUE(made.ok()) << made.status();
    std::vector<float> params((*made)->NumParams());
    (*made)->Init(9, params);
    Rng rng(13, "small_gemm_logits");
    const int n = 10;
    std::vector<float> x(static_cast<size_t>(n) * config.input_dim());
    for (float& v : x) v = static_cast<float>(rng.Uniform());
    logits[i].resize(static_cast<size_t>(n) * config.num_classes);
    (*made)->Logits(params, BatchView{.x = x.data(), .y = nullptr, .n = n}, logits[i]);
    ++i;
  }
  ASSERT_EQ(logits[0].size(), logits[1].size());
  for (size_t j = 0; j < logits[0].size(); ++j) {
    ASSERT_TRUE(SameBits(logits[0][j], logits[1][j]))
        << "logit " << j << ": native " << logits[0][j] << ", reproducible " << logits[1][j];
  }
}

}  // namespace
}  // namespace fedsim
