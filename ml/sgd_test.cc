#include "ml/sgd.h"

#include <vector>

#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(SgdTest, PlainStep) {
  Sgd sgd(SgdOptions{.lr = 0.5}, 2);
  std::vector<float> w = {1.0f, -2.0f};
  const std::vector<float> g = {0.5f, -1.0f};
  sgd.Step(w, g);
  EXPECT_FLOAT_EQ(w[0], 0.75f);   // 1 - 0.5 * 0.5
  EXPECT_FLOAT_EQ(w[1], -1.5f);   // -2 + 0.5 * 1
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
