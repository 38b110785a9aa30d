#include "ml/sgd.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(SgdTest, PlainStep) {
  Sgd sgd(SgdOptions{.lr = 0.5}, 2);
  std::vector<float> w = {1.0f, -2.0f};
  const std::vector<float> g = {0.5f, -1.0f};
  sgd.Step(w, g);
  EXPECT_FLOAT_EQ(w[0], 0.75f);  // 1 - 0.5 * 0.5
  EXPECT_FLOAT_EQ(w[1], -1.5f);  // -2 + 0.5 * 1
}

TEST(SgdTest, WeightDecay) {
  Sgd sgd(SgdOptions{.lr = 0.1, .weight_decay = 0.5}, 1);
  std::vector<float> w = {2.0f};
  const std::vector<float> g = {1.0f};
  sgd.Step(w, g);
  EXPECT_FLOAT_EQ(w[0], 2.0f - 0.1f * (1.0f + 0.5f * 2.0f));  // 1.8
}

TEST(SgdTest, MomentumAcrossSteps) {
  // v1 = g = 1, w1 = 1 - 0.1 * 1 = 0.9
  // v2 = 0.9 * 1 + 2 = 2.9, w2 = 0.9 - 0.29 = 0.61
  // v3 = 0.9 * 2.9 + 0 = 2.61, w3 = 0.61 - 0.261 = 0.349
  Sgd sgd(SgdOptions{.lr = 0.1, .momentum = 0.9}, 1);
  std::vector<float> w = {1.0f};
  sgd.Step(w, std::vector<float>{1.0f});
  EXPECT_FLOAT_EQ(w[0], 0.9f);
  sgd.Step(w, std::vector<float>{2.0f});
  EXPECT_FLOAT_EQ(w[0], 0.61f);
  sgd.Step(w, std::vector<float>{0.0f});
  EXPECT_NEAR(w[0], 0.349f, 1e-6);
  // Reset forgets the velocity: the next step is a plain one.
  sgd.Reset();
  sgd.Step(w, std::vector<float>{1.0f});
  EXPECT_NEAR(w[0], 0.249f, 1e-6);
}

// Without weight decay the momentum step drops the fma(0, w, g) term. That
// term can only change the sign of a zero, and the flush makes every zero
// velocity +0, so the bits must be the general formula's: signed zeros,
// subnormals, and a momentum that rounds to 0 in float included.
TEST(SgdTest, MomentumWithoutDecayGivesTheGeneralFormulasBits) {
  const float tiny = 1e-39f;  // subnormal
  const float ws[] = {0.0f, -0.0f, 1.0f, -1.0f, tiny, -tiny};
  const float gs[] = {0.0f, -0.0f, tiny, -tiny, 0.5f, -0.5f};
  const float vs[] = {0.0f, -0.0f, tiny, -tiny, -2.0f, 3e-38f};
  int checked = 0;
  for (const double momentum : {0.9, 1e-50}) {
    const float m = static_cast<float>(momentum), lr = 0.1f;
    for (float w0 : ws) {
      for (float g : gs) {
        for (float v0 : vs) {
          Sgd sgd(SgdOptions{.lr = lr, .momentum = momentum}, 1);
          float* v = sgd.ElementRule()->velocity;
          ASSERT_NE(v, nullptr);
          *v = v0;
          std::vector<float> w = {w0};
          sgd.Step(w, std::vector<float>{g});
          const float vi = std::fma(m, v0, std::fma(0.0f, w0, g));
          const float want_v = std::fabs(vi) < std::numeric_limits<float>::min() ? 0.0f : vi;
          const float want_w = std::fma(-lr, want_v, w0);
          EXPECT_EQ(std::bit_cast<uint32_t>(*v), std::bit_cast<uint32_t>(want_v))
              << "w " << w0 << " g " << g << " v " << v0 << " m " << m;
          EXPECT_EQ(std::bit_cast<uint32_t>(w[0]), std::bit_cast<uint32_t>(want_w))
              << "w " << w0 << " g " << g << " v " << v0 << " m " << m;
          ++checked;
        }
      }
    }
  }
  EXPECT_EQ(checked, 2 * 6 * 6 * 6);
}

TEST(SgdTest, MomentumWithWeightDecayAndProx) {
  // g' = g + wd * w + mu * (w - anchor) = 1 + 0.1 * 3 + 2 * (3 - 1) = 5.3
  // v1 = 5.3, w1 = 3 - 0.01 * 5.3 = 2.947
  // g' = 1 + 0.2947 + 2 * 1.947 = 5.1887; v2 = 0.5 * 5.3 + 5.1887 = 7.8387
  // w2 = 2.947 - 0.078387 = 2.868613
  Sgd sgd(SgdOptions{.lr = 0.01, .momentum = 0.5, .weight_decay = 0.1, .prox_mu = 2.0}, 1);
  std::vector<float> w = {3.0f};
  const std::vector<float> anchor = {1.0f};
  sgd.Step(w, std::vector<float>{1.0f}, anchor);
  EXPECT_NEAR(w[0], 2.947f, 1e-6);
  sgd.Step(w, std::vector<float>{1.0f}, anchor);
  EXPECT_NEAR(w[0], 2.868613f, 1e-5);
}

TEST(SgdTest, ProxWithoutMomentumPullsTowardsAnchor) {
  // g = 0: w = w - lr * mu * (w - a) = 5 - 0.1 * 1 * 4 = 4.6
  Sgd sgd(SgdOptions{.lr = 0.1, .prox_mu = 1.0}, 1);
  std::vector<float> w = {5.0f};
  const std::vector<float> anchor = {1.0f};
  sgd.Step(w, std::vector<float>{0.0f}, anchor);
  EXPECT_FLOAT_EQ(w[0], 4.6f);
}

}  // namespace
}  // namespace fedsim
