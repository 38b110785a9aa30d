#include "ml/fixed_math.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "gtest/gtest.h"
#include "util/rng.h"

namespace fedsim {
namespace {

// Distance in representable floats (same sign assumed).
int64_t UlpDistance(float a, float b) {
  return std::abs(static_cast<int64_t>(std::bit_cast<int32_t>(a)) -
                  static_cast<int64_t>(std::bit_cast<int32_t>(b)));
}

int64_t UlpDistance(double a, double b) {
  return std::abs(std::bit_cast<int64_t>(a) - std::bit_cast<int64_t>(b));
}

// Every float in the softmax's range (x = logit - max <= 0) and the positive
// side, at a stride of 97 bit patterns: ~2e7 arguments.
TEST(FixedMathTest, ExpWithinOneUlpOfCorrectlyRounded) {
  int64_t worst = 0;
  float worst_x = 0;
  int64_t checked = 0;
  for (uint64_t bits = 0; bits < (uint64_t{1} << 32); bits += 97) {
    const float x = std::bit_cast<float>(static_cast<uint32_t>(bits));
    if (!(x > -103.0f && x < 88.7f)) continue;
    // exp in double then rounded once: the correctly rounded float except in
    // the rarest ties.
    const float want = static_cast<float>(std::exp(static_cast<double>(x)));
    const int64_t d = UlpDistance(FixedExpF(x), want);
    if (d > worst) {
      worst = d;
      worst_x = x;
    }
    ++checked;
  }
  EXPECT_GT(checked, 10'000'000);
  EXPECT_LE(worst, 1) << "at x = " << worst_x;
}

TEST(FixedMathTest, ExpSpecialValues) {
  EXPECT_EQ(FixedExpF(0.0f), 1.0f);
  EXPECT_EQ(FixedExpF(-0.0f), 1.0f);
  EXPECT_EQ(FixedExpF(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(FixedExpF(-200.0f), 0.0f);
  EXPECT_EQ(FixedExpF(std::numeric_limits<float>::infinity()),
            std::numeric_limits<float>::infinity());
  EXPECT_EQ(FixedExpF(89.0f), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(FixedExpF(std::numeric_limits<float>::quiet_NaN())));
  // The largest finite result and a subnormal one.
  EXPECT_EQ(FixedExpF(0x1.62e42ep+6f), std::exp(0x1.62e42ep+6f));
  EXPECT_LE(UlpDistance(FixedExpF(-100.0f), static_cast<float>(std::exp(-100.0))), 1);
  EXPECT_GT(FixedExpF(-100.0f), 0.0f);
}

TEST(FixedMathTest, LogWithinTwoUlp) {
  Rng rng(1, "fixed_log");
  int64_t worst = 0;
  double worst_x = 0;
  for (int i = 0; i < 2'000'000; ++i) {
    // Softmax sums lie in [1, classes]; cover a wide range of exponents too.
    const double x =
        i % 2 == 0 ? 1.0 + 99.0 * rng.Uniform()
                   : std::ldexp(0.5 + rng.Uniform(), static_cast<int>(rng.UniformInt(2000)) - 1000);
    const int64_t d = UlpDistance(FixedLog(x), std::log(x));
    if (d > worst) {
      worst = d;
      worst_x = x;
    }
  }
  EXPECT_LE(worst, 2) << "at x = " << worst_x;
}

TEST(FixedMathTest, LogSpecialValues) {
  EXPECT_EQ(FixedLog(1.0), 0.0);
  EXPECT_EQ(FixedLog(0.0), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(FixedLog(std::numeric_limits<double>::infinity()),
            std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(FixedLog(-1.0)));
  EXPECT_TRUE(std::isnan(FixedLog(std::numeric_limits<double>::quiet_NaN())));
  const double tiny = std::numeric_limits<double>::denorm_min() * 12345;
  EXPECT_LE(UlpDistance(FixedLog(tiny), std::log(tiny)), 2);
  EXPECT_LE(UlpDistance(FixedLog(std::numeric_limits<double>::max()),
                        std::log(std::numeric_limits<double>::max())),
            2);
}

}  // namespace
}  // namespace fedsim
