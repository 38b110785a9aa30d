#include "sim/distribution.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "util/rng.h"

namespace fedsim {
namespace {

config::Distribution Parse(const std::string& text) {
  config::Distribution d;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &d)) << text;
  return d;
}

TEST(DistributionTest, ConstantAndUnsetAndTable) {
  EXPECT_EQ(DrawFromDistribution(Parse("constant: 0.25"), 1, "p", 3, 10, -1), 0.25);
  EXPECT_EQ(DrawFromDistribution(Parse(""), 1, "p", 3, 10, -1), -1);
  const config::Distribution t = Parse("table { values: [4, 5.5] }");
  EXPECT_EQ(DrawFromDistribution(t, 1, "p", 0, 3, -1), 4);
  EXPECT_EQ(DrawFromDistribution(t, 1, "p", 1, 3, -1), 5.5);
  EXPECT_EQ(DrawFromDistribution(t, 1, "p", 2, 3, -1), -1);  // too short: the fallback
}

TEST(DistributionTest, LinearIsFraboniFX) {
  const config::Distribution d = Parse("linear { base: 2 x_percent: 80 }");
  const std::vector<double> v = DrawForClients(d, 1, "p", 5, -1);
  const std::vector<double> want = {2.0, 1.6, 1.2, 0.8, 0.4};
  ASSERT_EQ(v.size(), want.size());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], want[i], 1e-12) << i;
  EXPECT_EQ(DrawFromDistribution(d, 1, "p", 0, 1, -1), 2.0);  // N = 1: the base
  // x_percent defaults to 80 and base to 1.
  EXPECT_NEAR(DrawFromDistribution(Parse("linear {}"), 1, "p", 4, 5, -1), 0.2, 1e-12);
}

TEST(DistributionTest, RandomKindsUseTheClientsOwnStream) {
  const config::Distribution u = Parse("uniform { lo: 0.5 hi: 1.5 }");
  const config::Distribution ln = Parse("lognormal { mu: -3 sigma: 0.5 }");
  for (uint32_t c : {0u, 1u, 7u}) {
    // Exactly the draw of Rng(seed, purpose, client): the values recorded runs
    // were made with stay the same.
    EXPECT_EQ(DrawFromDistribution(u, 42, "device.x", c, 10, -1),
              Rng(42, "device.x", c).Uniform(0.5, 1.5));
    EXPECT_EQ(DrawFromDistribution(ln, 42, "participation_prob", c, 10, -1),
              Rng(42, "participation_prob", c).LogNormal(-3, 0.5));
  }
  // Independent of N, of the purpose's other users, and different per client,
  // per purpose and per seed.
  EXPECT_EQ(DrawFromDistribution(u, 42, "a", 3, 10, -1),
            DrawFromDistribution(u, 42, "a", 3, 100000, -1));
  EXPECT_NE(DrawFromDistribution(u, 42, "a", 3, 10, -1),
            DrawFromDistribution(u, 42, "a", 4, 10, -1));
  EXPECT_NE(DrawFromDistribution(u, 42, "a", 3, 10, -1),
            DrawFromDistribution(u, 42, "b", 3, 10, -1));
  EXPECT_NE(DrawFromDistribution(u, 42, "a", 3, 10, -1),
            DrawFromDistribution(u, 43, "a", 3, 10, -1));
}

TEST(DistributionTest, UniformAndLognormalHaveTheirShape) {
  const std::vector<double> u = DrawForClients(Parse("uniform { lo: 2 hi: 3 }"), 5, "p", 4000, -1);
  double lo = 10, hi = 0, sum = 0;
  for (double x : u) {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    sum += x;
  }
  EXPECT_GE(lo, 2.0);
  EXPECT_LT(hi, 3.0);
  EXPECT_NEAR(sum / u.size(), 2.5, 0.02);

  std::vector<double> l = DrawForClients(Parse("lognormal { mu: 1 sigma: 0.5 }"), 5, "p", 4000, -1);
  double mean_log = 0;
  for (double x : l) {
    ASSERT_GT(x, 0);
    mean_log += std::log(x);
  }
  EXPECT_NEAR(mean_log / l.size(), 1.0, 0.03);
}

TEST(DistributionTest, DrawForClientsIsThePerClientDraw) {
  const config::Distribution d = Parse("lognormal { mu: 0 sigma: 1 }");
  const std::vector<double> v = DrawForClients(d, 9, "q", 50, -1);
  ASSERT_EQ(v.size(), 50u);
  for (uint32_t i = 0; i < 50; ++i) EXPECT_EQ(v[i], DrawFromDistribution(d, 9, "q", i, 50, -1));
}

}  // namespace
}  // namespace fedsim
