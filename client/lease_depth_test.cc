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

TEST(LeaseDepthTest, FoldDepthHoldsAboutSixteenMillisecondsOfTraining) {
  LeaseDepth d;
  EXPECT_EQ(d.FoldDepth(), LeaseDepth::kFoldMin);  // nothing timed yet
  d.NoteTrain(absl::Microseconds(500));            // the pfl recipe's tasks
  EXPECT_EQ(d.FoldDepth(), LeaseDepth::kFoldMax);
  LeaseDepth mid;
  mid.NoteTrain(absl::Microseconds(1000));
  EXPECT_EQ(mid.FoldDepth(), 16);
  LeaseDepth tiny;
  tiny.NoteTrain(absl::Nanoseconds(1));  // capped, not 16 million
  EXPECT_EQ(tiny.FoldDepth(), LeaseDepth::kFoldMax);
  LeaseDepth slow;
  slow.NoteTrain(absl::Milliseconds(25));  // the quickstart's tasks
  EXPECT_EQ(slow.FoldDepth(), LeaseDepth::kFoldMin);
  // The running mean follows a change of task length.
  for (int i = 0; i < 30; ++i) d.NoteTrain(absl::Milliseconds(25));
  EXPECT_EQ(d.FoldDepth(), LeaseDepth::kFoldMin);
}

TEST(LeaseDepthTest, UntimedWorkStaysAtOne) {
  LeaseDepth d;  // a fake clock that never moves times everything as 0
  EXPECT_EQ(d.NoteTrain(absl::ZeroDuration()), 0);
  EXPECT_EQ(d.NotePush(absl::ZeroDuration()), 0);
  EXPECT_EQ(d.depth(), 1);
  EXPECT_EQ(d.FoldDepth(), LeaseDepth::kFoldMin);
}

}  // namespace
}  // namespace fedsim
