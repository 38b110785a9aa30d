#include "algorithms/aggregate.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(AddWeightedTest, AddsScaledVector) {
  std::vector<float> acc = {1, 2, 3};
  const std::vector<float> x = {2, 4, -2};
  AddWeighted(acc, 0.5, x);  // {1+1, 2+2, 3-1}
  EXPECT_THAT(acc, ElementsAre(2, 4, 2));
}

TEST(AddWeightedTest, KeepsDoubleCoefficient) {
  // float(1/3) * 3 != 1 in float; the double coefficient gives exactly 1.
  std::vector<float> acc = {0};
  const std::vector<float> x = {3};
  AddWeighted(acc, 1.0 / 3.0, x);
  EXPECT_EQ(acc[0], 1.0f);
}

TEST(MixTowardTest, MovesFractionOfTheWay) {
  std::vector<float> x = {0, 4};
  const std::vector<float> target = {4, 0};
  MixToward(x, 0.25, target);  // {0 + 0.25*4, 4 - 0.25*4}
  EXPECT_THAT(x, ElementsAre(1, 3));
}

TEST(MedianTest, OddAndEven) {
  EXPECT_EQ(Median(std::vector<float>{5, 1, 3}), 3);
  EXPECT_EQ(Median(std::vector<float>{4, 1, 3, 10}), 3.5);
  EXPECT_EQ(Median(std::vector<float>{7}), 7);
}

TEST(MedianTest, Coordinatewise) {
  const std::vector<float> a = {1, 10}, b = {2, -5}, c = {100, 0};
  const std::vector<std::span<const float>> v = {a, b, c};
  std::vector<float> out(2);
  ASSERT_TRUE(CoordinateMedian(v, out).ok());
  EXPECT_THAT(out, ElementsAre(2, 0));
}

TEST(StalenessFnTest, Values) {
  EXPECT_EQ(StalenessFn::Constant()(100), 1.0);
  const StalenessFn poly = StalenessFn::Polynomial(0.5);
  EXPECT_EQ(poly(0), 1.0);
  EXPECT_EQ(poly(3), 0.5);  // 4^-0.5
  const StalenessFn hinge = StalenessFn::Hinge(10, 4);
  EXPECT_EQ(hinge(4), 1.0);
  EXPECT_DOUBLE_EQ(hinge(5), 1.0 / 11.0);  // 1 / (10 * 1 + 1)
  EXPECT_DOUBLE_EQ(hinge(6), 1.0 / 21.0);
}

TEST(StalenessFnTest, FromConfig) {
  config::Staleness c;
  absl::StatusOr<StalenessFn> f = StalenessFn::FromConfig(c, "fedbuff.staleness");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->kind(), StalenessFn::Kind::kPolynomial);  // default 1/sqrt(1+s)
  EXPECT_EQ(f->a(), 0.5);

  c.mutable_hinge()->set_a(2);
  c.mutable_hinge()->set_b(1);
  f = StalenessFn::FromConfig(c, "fedasync.staleness");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->DebugString(), "hinge(a=2,b=1)");
  EXPECT_DOUBLE_EQ((*f)(3), 1.0 / 5.0);  // 1 / (2 * 2 + 1)

  c.mutable_polynomial()->set_a(-1);
  f = StalenessFn::FromConfig(c, "fedasync.staleness");
  EXPECT_EQ(f.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(f.status().message(), HasSubstr("fedasync.staleness.polynomial.a"));
}

}  // namespace
}  // namespace fedsim
