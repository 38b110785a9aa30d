#include "compare/stats.h"

#include <cmath>

#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(StatsTest, MeanAndSampleStd) {
  EXPECT_DOUBLE_EQ(Mean({1, 2, 3, 6}), 3);
  // Deviations -2 -1 0 3: squares sum to 14, / (n - 1) = 14 / 3.
  EXPECT_DOUBLE_EQ(SampleStd({1, 2, 3, 6}), std::sqrt(14.0 / 3));
  EXPECT_EQ(SampleStd({5}), 0);
}

TEST(StatsTest, StudentQuantilesMatchTables) {
  EXPECT_NEAR(StudentT975(1), 12.7062, 1e-4);
  EXPECT_NEAR(StudentT975(2), 4.3027, 1e-4);
  EXPECT_NEAR(StudentT975(9), 2.2622, 1e-4);
  EXPECT_NEAR(StudentT975(30), 2.0423, 1e-4);
  // Beyond the table: the expansion against published values.
  EXPECT_NEAR(StudentT975(31), 2.039513, 1e-5);
  EXPECT_NEAR(StudentT975(40), 2.021075, 1e-5);
  EXPECT_NEAR(StudentT975(60), 2.000298, 1e-5);
  EXPECT_NEAR(StudentT975(120), 1.979930, 1e-5);
  EXPECT_NEAR(StudentT975(100000), 1.959985, 1e-5);
  for (int df = 1; df < 200; ++df) EXPECT_GT(StudentT975(df), StudentT975(df + 1)) << df;
}

TEST(StatsTest, IntervalUsesTWithNMinusOneDegrees) {
  // {1, 2, 3}: mean 2, sd 1, half width t(0.975, 2) / sqrt(3).
  MeanInterval iv = Interval95({1, 2, 3});
  EXPECT_EQ(iv.n, 3);
  EXPECT_DOUBLE_EQ(iv.mean, 2);
  ASSERT_TRUE(iv.lo && iv.hi);
  EXPECT_NEAR(*iv.hi - 2, 4.302652730 / std::sqrt(3.0), 1e-9);
  EXPECT_NEAR(2 - *iv.lo, 4.302652730 / std::sqrt(3.0), 1e-9);
  MeanInterval one = Interval95({0.5});
  EXPECT_EQ(one.n, 1);
  EXPECT_FALSE(one.lo.has_value());
}

}  // namespace
}  // namespace fedsim
