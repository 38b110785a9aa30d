#include "algorithms/rule_util.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

ClientUpdate UpdateOf(std::vector<float> delta) {
  ClientUpdate u;
  u.task_id = 7;
  u.delta = std::move(delta);
  return u;
}

TEST(CheckDeltaTest, AcceptsEveryFiniteValue) {
  const float big = std::numeric_limits<float>::max();
  const float tiny = std::numeric_limits<float>::denorm_min();
  EXPECT_TRUE(CheckDelta(UpdateOf({0.0f, -0.0f, 1.5f, big, -big, tiny, -tiny}), 7).ok());
  EXPECT_TRUE(CheckDelta(UpdateOf({}), 0).ok());
}

TEST(CheckDeltaTest, RejectsNonFiniteValuesAnywhere) {
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(),
                       std::numeric_limits<float>::infinity(),
                       -std::numeric_limits<float>::infinity()};
  for (float b : bad) {
    // First, middle and last place of a vector longer than one SIMD register.
    for (size_t at : {size_t{0}, size_t{17}, size_t{40}}) {
      std::vector<float> d(41, 0.25f);
      d[at] = b;
      const absl::Status s = CheckDelta(UpdateOf(d), d.size());
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << b << " at " << at;
      EXPECT_THAT(s.message(), HasSubstr("update of task 7 has a non-finite value"));
    }
  }
}

TEST(CheckDeltaTest, RejectsAWrongSize) {
  const absl::Status s = CheckDelta(UpdateOf({1, 2}), 3);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("has 2 values, want 3"));
}

}  // namespace
}  // namespace fedsim
