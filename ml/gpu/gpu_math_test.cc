// The GPU backend's scalar arithmetic (ml/gpu/gpu_math.h) against the CPU
// path's: the SGD element bit for bit with ml/sgd.cc, pooling ties, the
// batched GEMM's masking.
#include "ml/gpu/gpu_math.h"

#include <cstring>
#include <limits>
#include <vector>

#include "gtest/gtest.h"
#include "ml/sgd.h"
#include "util/rng.h"

namespace fedsim::gpu {
namespace {

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// (exp and log are shared with the CPU's reproducible mode, whose tests,
// ml/fixed_math_test.cc, check their accuracy against libm.)

// Every combination of the SGD options, several steps (momentum carries),
// against Sgd::Step on the same vectors.
TEST(GpuMathTest, SgdElementMatchesSgdStepBitForBit) {
  for (double momentum : {0.0, 0.9}) {
    for (double wd : {0.0, 1e-3}) {
      for (double mu : {0.0, 0.01}) {
        SgdOptions o;
        o.lr = 0.05;
        o.momentum = momentum;
        o.weight_decay = wd;
        o.prox_mu = mu;
        const size_t n = 257;
        Rng rng(3, "sgd");
        std::vector<float> w(n), a(n), g(n);
        for (size_t i = 0; i < n; ++i) {
          w[i] = static_cast<float>(rng.Uniform(-1, 1));
          a[i] = static_cast<float>(rng.Uniform(-1, 1));
        }
        w[0] = 0.0f;  // signed zeros and a dead unit's decaying velocity
        std::vector<float> w2 = w, v2(n, 0.0f);
        Sgd sgd(o, n);
        SgdScalars s{static_cast<float>(o.lr), static_cast<float>(o.momentum),
                     static_cast<float>(o.weight_decay), static_cast<float>(o.prox_mu)};
        for (int step = 0; step < 5; ++step) {
          for (size_t i = 0; i < n; ++i) g[i] = static_cast<float>(rng.Uniform(-1, 1));
          g[0] = step == 0 ? 1e-30f : 0.0f;
          sgd.Step(w, g, a);
          for (size_t i = 0; i < n; ++i) SgdElement(s, g[i], a[i], &w2[i], &v2[i]);
          for (size_t i = 0; i < n; ++i) {
            ASSERT_EQ(Bits(w2[i]), Bits(w[i])) << "momentum " << momentum << " wd " << wd << " mu "
                                               << mu << " step " << step << " i " << i;
          }
        }
      }
    }
  }
}

TEST(GpuMathTest, MaxPoolTiesGoToTheFirst) {
  EXPECT_EQ(MaxPoolArg(1, 1, 1, 1), 0);
  EXPECT_EQ(MaxPoolArg(0, 2, 2, 1), 1);
  EXPECT_EQ(MaxPoolArg(0, 1, 3, 3), 2);
  EXPECT_EQ(MaxPoolArg(-1, -2, -3, 0), 3);
}

// A client's depth is its own row count: rows past it are never read, so a
// NaN there changes nothing.
TEST(GpuMathTest, GemmDepthMasksRowsPastTheClientsCount) {
  // A is 2 x 4 (i x k) per client, B is 4 x 1; client 0 has 2 rows of k.
  std::vector<float> a = {1, 2, NAN, NAN, 3, 4, NAN, NAN};
  std::vector<float> b = {10, 100, NAN, NAN};
  std::vector<float> out(2);
  const int counts[1] = {1};
  GemmArgs g;
  g.a = a.data();
  g.b = b.data();
  g.out = out.data();
  g.a_row = 4;
  g.a_col = 1;
  g.b_row = 1;
  g.b_col = 1;
  g.c_row = 1;
  g.m = 2;
  g.n = 1;
  g.k = 4;
  g.k_count = counts;
  g.k_scale = 2;
  EXPECT_EQ(GemmDepth(g, 0), 2);
  EXPECT_EQ(GemmDot(g, 0, 0, 0), 210.0f);
  EXPECT_EQ(GemmDot(g, 0, 1, 0), 430.0f);
}

}  // namespace
}  // namespace fedsim::gpu
