#include "client/lease_depth.h"

#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(LeaseDepthTest, LeasesAheadOnlyForTasksShortAgainstThePush) {
  LeaseDepth d;
  EXPECT_EQ(d.depth(), 1);
  EXPECT_EQ(d.NoteTrain(absl::Milliseconds(2)), 0);  // no push timed yet
  EXPECT_EQ(d.depth(), 1);
  EXPECT_EQ(d.NotePush(absl::Microseconds(500)), +1);  // 2 ms < 8 x 0.5 ms
  EXPECT_EQ(d.depth(), LeaseDepth::kAhead);
  EXPECT_EQ(d.NotePush(absl::Microseconds(500)), 0);
  // Long tasks (the mean moves a fifth of the way per task) end it.
  int change = 0;
  for (int i = 0; i < 20; ++i) change += d.NoteTrain(absl::Milliseconds(40));
  EXPECT_EQ(change, -1);
  EXPECT_EQ(d.depth(), 1);
}

TEST(LeaseDepthTest, UntimedWorkStaysAtOne) {
  LeaseDepth d;  // a fake clock that never moves times everything as 0
  EXPECT_EQ(d.NoteTrain(absl::ZeroDuration()), 0);
  EXPECT_EQ(d.NotePush(absl::ZeroDuration()), 0);
  EXPECT_EQ(d.depth(), 1);
}

}  // namespace
}  // namespace fedsim
