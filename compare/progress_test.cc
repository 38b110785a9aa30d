#include "compare/progress.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using State = RunProgress::State;

TEST(ProgressTest, ShareIsTheLargerOfTimeAndCommits) {
  EXPECT_DOUBLE_EQ(RunShare(30, 10, 300, 1000), 0.1);
  EXPECT_DOUBLE_EQ(RunShare(30, 500, 300, 1000), 0.5);
  EXPECT_DOUBLE_EQ(RunShare(30, 500, 0, 0), 0);
  EXPECT_DOUBLE_EQ(RunShare(400, 0, 300, 0), 1);
}

TEST(ProgressTest, EtaFromRunningAndQueuedRuns) {
  // 25% after 10 s: 30 s left; the slower of two running runs counts.
  std::vector<RunProgress> runs = {{State::kRunning, 1, 0.25, 10, -1},
                                   {State::kRunning, 2, 0.5, 10, -1},
                                   {State::kDone, 3, 1, 40, 0.8}};
  ASSERT_TRUE(ArmEta(runs, 40).has_value());
  EXPECT_DOUBLE_EQ(*ArmEta(runs, 40), 30);
  // Two queued runs of 40 s, shared between the two running slots: +40 s.
  runs.push_back({State::kQueued, 4});
  runs.push_back({State::kQueued, 5});
  EXPECT_DOUBLE_EQ(*ArmEta(runs, 40), 70);
  // Unknown without a typical run time.
  EXPECT_FALSE(ArmEta(runs, 0).has_value());
  // A run that has barely started uses the typical time.
  EXPECT_DOUBLE_EQ(*ArmEta({{State::kRunning, 1, 0.001, 5, -1}}, 40), 35);
  EXPECT_DOUBLE_EQ(*ArmEta({{State::kDone, 1, 1, 5, -1}}, 0), 0);
}

TEST(ProgressTest, Formatting) {
  EXPECT_EQ(FormatDuration(12.4), "12s");
  EXPECT_EQ(FormatDuration(185), "3m05s");
  EXPECT_EQ(FormatDuration(3720), "1h02m");
  EXPECT_EQ(FormatDuration(std::nullopt), "?");
  const std::string line = ArmProgressLine(
      "fedbuff", 10, {{State::kRunning, 1, 0.62, 10, 0.7812}, {State::kDone, 2}}, 130);
  EXPECT_EQ(line, "  fedbuff     seed 1  62%  (1/2 done)  acc 0.781  ETA 2m10s");
}

}  // namespace
}  // namespace fedsim
