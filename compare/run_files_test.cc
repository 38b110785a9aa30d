#include "compare/run_files.h"

#include <cmath>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(RunFilesTest, ReadsColumnsByNameWithEmptyCellsAsNaN) {
  auto m = ParseMetricsCsv(
      "virtual_time,version,test_accuracy,consensus_distance\n"
      "0,0,0.1,\n"
      "1.5,3,0.25,0.75\n",
      "metrics.csv");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->num_rows(), 2u);
  EXPECT_THAT(m->Column("version"), ElementsAre(0, 3));
  EXPECT_TRUE(std::isnan(m->At(0, "consensus_distance")));
  EXPECT_DOUBLE_EQ(m->At(1, "consensus_distance"), 0.75);
  EXPECT_TRUE(m->Has("test_accuracy"));
  EXPECT_FALSE(m->Has("robust_accuracy"));
  EXPECT_TRUE(m->Column("robust_accuracy").empty());
  EXPECT_TRUE(std::isnan(m->At(1, "robust_accuracy")));
}

TEST(RunFilesTest, BadRowsNameTheirLine) {
  auto m = ParseMetricsCsv("a,b\n1,2\n3\n", "runs/x/metrics.csv");
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("runs/x/metrics.csv:3:"));
  auto bad = ParseMetricsCsv("a,b\n1,zz\n", "m.csv");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("m.csv:2: b 'zz'"));
  EXPECT_FALSE(ParseMetricsCsv("", "m.csv").ok());
}

// A metrics.csv saved again by a Windows spreadsheet reads the same.
TEST(RunFilesTest, WindowsLineEndsAndAByteOrderMarkReadTheSame) {
  auto m = ParseMetricsCsv("\xEF\xBB\xBFvirtual_time,test_accuracy\r\n0,0.1\r\n2.5,0.5\r\n",
                           "metrics.csv");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(m->Column("virtual_time"), ElementsAre(0, 2.5));
  EXPECT_THAT(m->Column("test_accuracy"), ElementsAre(0.1, 0.5));
}

TEST(RunFilesTest, ReadsTheManifest) {
  const std::string path = testing::TempDir() + "/run_files_manifest.json";
  std::ofstream(path) << R"({"name": "x", "scenario_hash": "abc", "seed": 18446744073709551615,
    "build_id": "b1", "algorithm": "fedbuff", "final_model_hash": "f", "stop_reason":
    "max_commits", "final_accuracy": 0.5, "virtual_time": 12.5, "updates_applied": 40,
    "wall_s": 1.5})";
  auto m = ReadManifest(path);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->scenario_hash, "abc");
  EXPECT_EQ(m->seed, 18446744073709551615ull);
  EXPECT_EQ(m->algorithm, "fedbuff");
  EXPECT_EQ(m->stop_reason, "max_commits");
  EXPECT_EQ(m->updates_applied, 40u);
  EXPECT_DOUBLE_EQ(m->virtual_time, 12.5);
  std::ofstream(path) << "{ not json";
  EXPECT_EQ(ReadManifest(path).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ReadManifest(path + ".missing").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace fedsim
