#include "report/report_input.h"

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "report/report_test_util.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class ReportInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) / ("report_input_" + std::to_string(getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(ReportInputTest, ARunFolderIsOneArmOneSeed) {
  WriteFakeRun(dir_, "fedbuff", 7);
  auto in = LoadReportInput(dir_.string());
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_FALSE(in->is_comparison);
  EXPECT_EQ(in->title, "fake");
  EXPECT_THAT(in->arms, ElementsAre("fedbuff"));
  ASSERT_EQ(in->runs.size(), 1u);
  EXPECT_EQ(in->runs[0].seed, 7u);
  EXPECT_EQ(in->runs[0].num_clients, 3u);
  EXPECT_EQ(in->runs[0].metrics.num_rows(), 3u);
}

TEST_F(ReportInputTest, AComparisonFolderInArmOrderWithMissingRunsNamed) {
  WriteFakeRun(dir_ / "b" / "seed-2", "fedbuff", 2);
  WriteFakeRun(dir_ / "b" / "seed-1", "fedbuff", 1);
  WriteFakeRun(dir_ / "a" / "seed-1", "fedavg", 1);
  std::ofstream(dir_ / "comparison.json") << R"({"name": "cmp", "scenario": "s.textproto",
    "target": {"accuracy": 0.8, "column": "test_accuracy"},
    "arms": [{"name": "a", "note": "", "set": []}, {"name": "b", "note": "n", "set": ["x=1"]}],
    "runs": [{"arm": "b", "seed": 2, "dir": "b/seed-2"}, {"arm": "a", "seed": 1, "dir": "a/seed-1"},
             {"arm": "b", "seed": 1, "dir": "b/seed-1"}, {"arm": "a", "seed": 2, "dir": "a/seed-2"}]})";
  auto in = LoadReportInput(dir_.string());
  ASSERT_TRUE(in.ok()) << in.status();
  EXPECT_TRUE(in->is_comparison);
  EXPECT_EQ(in->title, "cmp");
  EXPECT_EQ(in->target, "test_accuracy >= 0.8");
  EXPECT_THAT(in->arms, ElementsAre("a", "b"));
  EXPECT_THAT(in->arm_sets, ElementsAre("", "--set=x=1"));
  ASSERT_EQ(in->runs.size(), 3u);
  EXPECT_EQ(in->runs[0].arm, "a");
  EXPECT_EQ(in->runs[1].seed, 1u);
  EXPECT_EQ(in->runs[2].seed, 2u);
  EXPECT_THAT(in->missing, ElementsAre("a seed 2"));
}

TEST_F(ReportInputTest, NeitherIsAnError) {
  fs::create_directories(dir_);
  auto in = LoadReportInput(dir_.string());
  ASSERT_FALSE(in.ok());
  EXPECT_THAT(std::string(in.status().message()), HasSubstr("is neither a run folder"));
  std::ofstream(dir_ / "metrics.csv") << "a\n1\n";
  EXPECT_THAT(std::string(LoadReportInput(dir_.string()).status().message()),
              HasSubstr("no readable manifest.json"));
}

}  // namespace
}  // namespace fedsim
