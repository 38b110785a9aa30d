#include "sim/devices.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "config/scenario_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

config::Scenario MakeScenario(const std::string& devices_text, uint32_t num_clients) {
  auto s = ParseScenarioText(
      "stop { max_commits: 1 }\ndevices { " + devices_text + " }", "d.textproto",
      {"num_clients=" + std::to_string(num_clients), "algorithm.fedavg.clients_per_round=1"});
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : config::Scenario();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST(DevicesTest, DefaultsAreConstant) {
  auto p = BuildDeviceProfiles(MakeScenario("", 3), ".");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 3u);
  for (const DeviceProfile& d : *p) {
    EXPECT_EQ(d.seconds_per_example, 0.001);
    EXPECT_EQ(d.latency_down_s, 0.0);
    EXPECT_EQ(d.latency_up_s, 0.0);
    EXPECT_EQ(d.down_mbps, 0.0);
    EXPECT_EQ(d.up_mbps, 0.0);
  }
}

TEST(DevicesTest, ConstantIsExact) {
  auto p = BuildDeviceProfiles(
      MakeScenario("seconds_per_example { constant: 0.25 } up_mbps { constant: 8 }", 4), ".");
  ASSERT_TRUE(p.ok()) << p.status();
  for (const DeviceProfile& d : *p) {
    EXPECT_EQ(d.seconds_per_example, 0.25);
    EXPECT_EQ(d.up_mbps, 8.0);
  }
}

TEST(DevicesTest, LinearIsFraboniFX) {
  // F-80 with N = 5: tau_i = 1 - i * 0.8 / 4.
  auto p = BuildDeviceProfiles(
      MakeScenario("seconds_per_example { linear { base: 2 x_percent: 80 } }", 5), ".");
  ASSERT_TRUE(p.ok()) << p.status();
  const double expected[] = {2.0, 1.6, 1.2, 0.8, 0.4};
  for (int i = 0; i < 5; ++i) EXPECT_NEAR((*p)[i].seconds_per_example, expected[i], 1e-12);
  // N = 1: the base.
  p = BuildDeviceProfiles(
      MakeScenario("seconds_per_example { linear { base: 2 x_percent: 80 } }", 1), ".");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)[0].seconds_per_example, 2.0);
}

TEST(DevicesTest, UniformStaysInRangeAndDoesNotDependOnN) {
  auto small =
      BuildDeviceProfiles(MakeScenario("latency_down_s { uniform { lo: 0.5 hi: 1.5 } }", 10), ".");
  auto large = BuildDeviceProfiles(
      MakeScenario("latency_down_s { uniform { lo: 0.5 hi: 1.5 } }", 1000), ".");
  ASSERT_TRUE(small.ok() && large.ok());
  double lo = 10, hi = -10;
  for (const DeviceProfile& d : *large) {
    lo = std::min(lo, d.latency_down_s);
    hi = std::max(hi, d.latency_down_s);
  }
  EXPECT_GE(lo, 0.5);
  EXPECT_LT(hi, 1.5);
  EXPECT_LT(lo, 0.6);
  EXPECT_GT(hi, 1.4);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ((*small)[i].latency_down_s, (*large)[i].latency_down_s);
  }
  // Clients draw from different streams.
  EXPECT_NE((*large)[0].latency_down_s, (*large)[1].latency_down_s);
}

TEST(DevicesTest, LognormalMedianIsExpMu) {
  auto p = BuildDeviceProfiles(
      MakeScenario("seconds_per_example { lognormal { mu: -3 sigma: 1 } }", 4000), ".");
  ASSERT_TRUE(p.ok()) << p.status();
  std::vector<double> v;
  for (const DeviceProfile& d : *p) v.push_back(d.seconds_per_example);
  EXPECT_NEAR(std::log(Median(v)), -3.0, 0.08);
}

TEST(DevicesTest, TableGivesEachClientItsValue) {
  auto p = BuildDeviceProfiles(MakeScenario("down_mbps { table { values: [1, 2.5, 0] } }", 3), ".");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)[0].down_mbps, 1.0);
  EXPECT_EQ((*p)[1].down_mbps, 2.5);
  EXPECT_EQ((*p)[2].down_mbps, 0.0);
}

TEST(DevicesTest, CsvOverridesListedClients) {
  const std::string dir = testing::TempDir();
  std::ofstream(dir + "/devices_test_profiles.csv")
      << "# measured phones\n"
      << "client,seconds_per_example,latency_s,down_mbps,up_mbps\n"
      << "\n"
      << "1, 0.5, 0.2, 10, 5\n"
      << "3,0.01,0,0,0\n";
  auto p = BuildDeviceProfiles(MakeScenario("seconds_per_example { constant: 0.1 } "
                                            "profiles_csv: \"devices_test_profiles.csv\"",
                                            4),
                               dir);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)[0].seconds_per_example, 0.1);
  EXPECT_EQ((*p)[1].seconds_per_example, 0.5);
  EXPECT_EQ((*p)[1].latency_down_s, 0.2);
  EXPECT_EQ((*p)[1].latency_up_s, 0.2);
  EXPECT_EQ((*p)[1].down_mbps, 10.0);
  EXPECT_EQ((*p)[1].up_mbps, 5.0);
  EXPECT_EQ((*p)[2].seconds_per_example, 0.1);
  EXPECT_EQ((*p)[3].seconds_per_example, 0.01);
}

TEST(DevicesTest, CsvMissingFileIsNotFound) {
  auto p = BuildDeviceProfiles(MakeScenario("profiles_csv: \"nope.csv\"", 2), "/nonexistent");
  EXPECT_EQ(p.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(p.status().message()),
              HasSubstr("/nonexistent/nope.csv: no such file or directory"));
}

std::string Csv(const std::string& text, size_t n = 4) {
  std::vector<DeviceProfile> profiles(n);
  return std::string(ApplyProfilesCsv(text, "p.csv", &profiles).message());
}

constexpr char kHeader[] = "client,seconds_per_example,latency_s,down_mbps,up_mbps\n";

TEST(DevicesTest, CsvBadRowsAreReportedByLine) {
  EXPECT_THAT((Csv("client,speed\n1,2\n")), StartsWith("p.csv:1: expected the header"));
  EXPECT_THAT((Csv(std::string("# c\n") + kHeader + "0,1,2,3\n")),
              StartsWith("p.csv:3: expected 5 fields"));
  EXPECT_THAT((Csv(std::string(kHeader) + "0,abc,0,0,0\n")),
              StartsWith("p.csv:2: seconds_per_example 'abc' is not a finite number"));
  EXPECT_THAT((Csv(std::string(kHeader) + "0,1,-1,0,0\n")),
              StartsWith("p.csv:2: latency_s -1 is negative"));
  EXPECT_THAT((Csv(std::string(kHeader) + "x,1,0,0,0\n")),
              StartsWith("p.csv:2: client 'x' is not an integer >= 0"));
  EXPECT_THAT((Csv(std::string(kHeader) + "4,1,0,0,0\n")),
              StartsWith("p.csv:2: client 4 does not exist"));
  EXPECT_THAT((Csv(std::string(kHeader) + "0,1,0,0,0\n\n2,1,0,0,0\n0,2,0,0,0\n")),
              StartsWith("p.csv:5: client 0 is listed twice"));
  EXPECT_THAT((Csv("# only a comment\n")), HasSubstr("no header line"));
  // Several bad rows: each one reported.
  std::string s = Csv(std::string(kHeader) + "0,x,0,0,0\n1,1,0,0,0\n9,1,0,0,0\n");
  EXPECT_THAT(s, HasSubstr("p.csv:2: "));
  EXPECT_THAT(s, HasSubstr("\np.csv:4: "));
  EXPECT_EQ(Csv(std::string(kHeader) + "0,1,0,0,0\r\n"), "");
  // Two bad values in one row: both reported.
  EXPECT_EQ(Csv(std::string(kHeader) + "0,-1,0,x,0\n"),
            "p.csv:2: seconds_per_example -1 is negative; use a value >= 0\n"
            "p.csv:2: down_mbps 'x' is not a finite number");
}

TEST(DevicesTest, CsvFromASpreadsheetReads) {
  std::vector<DeviceProfile> profiles(3);
  const absl::Status s = ApplyProfilesCsv(
      std::string("\xEF\xBB\xBF") + "client,seconds_per_example,latency_s,down_mbps,up_mbps\r\n" +
          "# measured\r\n2,0.5,0.25,10,5\r\n",
      "p.csv", &profiles);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(profiles[2].seconds_per_example, 0.5);
  EXPECT_EQ(profiles[2].latency_up_s, 0.25);
  EXPECT_EQ(profiles[2].up_mbps, 5.0);
  EXPECT_EQ(profiles[0].seconds_per_example, DeviceProfile().seconds_per_example);
}

TEST(DevicesTest, ExpectedTaskSeconds) {
  DeviceProfile p;
  p.seconds_per_example = 0.01;
  p.latency_down_s = 0.5;
  p.latency_up_s = 0.25;
  p.down_mbps = 8;  // 1 MB/s
  p.up_mbps = 0;    // unlimited
  EXPECT_DOUBLE_EQ(ExpectedTaskSeconds(p, 100, 2'000'000), 0.5 + 2.0 + 1.0 + 0.25);
  p.up_mbps = 16;
  EXPECT_DOUBLE_EQ(ExpectedTaskSeconds(p, 100, 2'000'000), 0.5 + 2.0 + 1.0 + 0.25 + 1.0);
}

TEST(DevicesTest, JitterIsDeterministicWithMedianOne) {
  DeviceProfile p;
  p.seconds_per_example = 1.0;
  EXPECT_EQ(TaskSeconds(p, 10, 0, 0.0, 7, 3, 1), 10.0);
  EXPECT_EQ(TaskSeconds(p, 10, 0, 0.5, 7, 3, 1), TaskSeconds(p, 10, 0, 0.5, 7, 3, 1));
  EXPECT_NE(TaskSeconds(p, 10, 0, 0.5, 7, 3, 1), TaskSeconds(p, 10, 0, 0.5, 7, 4, 1));
  EXPECT_NE(TaskSeconds(p, 10, 0, 0.5, 7, 3, 1), TaskSeconds(p, 10, 0, 0.5, 7, 3, 2));
  std::vector<double> ratios;
  for (uint64_t task = 0; task < 4000; ++task) {
    ratios.push_back(TaskSeconds(p, 1, 0, 0.5, 7, task, static_cast<uint32_t>(task % 13)));
  }
  EXPECT_NEAR(Median(ratios), 1.0, 0.04);
}

}  // namespace
}  // namespace fedsim
