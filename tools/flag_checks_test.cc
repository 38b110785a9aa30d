#include "tools/flag_checks.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "absl/flags/flag.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(int, syntax_count, 3, "a count, for CheckFlagSyntax");
ABSL_FLAG(double, syntax_seconds, 1.5, "seconds, for CheckFlagSyntax");
ABSL_FLAG(std::string, syntax_name, "x", "a string, for CheckFlagSyntax");
ABSL_FLAG(bool, syntax_switch, false, "a switch, for CheckFlagSyntax");

namespace fedsim {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> Lines(const ProblemList& problems) {
  std::vector<std::string> out;
  for (const auto& p : problems.problems()) out.push_back(p.path + ": " + p.message);
  return out;
}

// Regression: --workers=abc got Abseil's "Illegal value" and exit 1.
TEST(FlagChecksTest, ValuesTheFlagsParserRefusesNameTheFlagAndLeaveFlagsAlone) {
  std::vector<std::string> args = {"fedsim run",       "--syntax_count=abc", "-syntax_seconds",
                                   "soon",             "--syntax_name=7",    "--syntax_switch",
                                   "--unknown_flag=1", "--",                 "--syntax_count=z"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  ProblemList problems;
  CheckFlagSyntax(static_cast<int>(argv.size()), argv.data(), &problems);
  EXPECT_THAT(Lines(problems), ElementsAre("--syntax_count: 'abc' is not a whole number",
                                           "--syntax_seconds: 'soon' is not a number"));

  // Good values pass and are not applied here (absl::ParseCommandLine does).
  args = {"fedsim run", "--syntax_count=12", "--syntax_seconds", "0.25", "--syntax_name=7"};
  argv.clear();
  for (std::string& a : args) argv.push_back(a.data());
  ProblemList none;
  CheckFlagSyntax(static_cast<int>(argv.size()), argv.data(), &none);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(absl::GetFlag(FLAGS_syntax_count), 3);
  EXPECT_EQ(absl::GetFlag(FLAGS_syntax_seconds), 1.5);
  EXPECT_EQ(absl::GetFlag(FLAGS_syntax_name), "x");
}

// Regression: --workers=-1 and --slots=-3 silently became the defaults.
TEST(FlagChecksTest, CountsOutOfRangeNameTheFlagAndTheRange) {
  ProblemList problems;
  CheckFlagRange("workers", 0, 0, kMaxProcesses, "0 = one per CPU core", &problems);
  CheckFlagRange("workers", 1024, 0, kMaxProcesses, "0 = one per CPU core", &problems);
  EXPECT_TRUE(problems.empty());
  CheckFlagRange("workers", -1, 0, kMaxProcesses, "0 = one per CPU core", &problems);
  CheckFlagRange("slots", 100000, 0, kMaxProcesses, "0 = automatic", &problems);
  EXPECT_THAT(Lines(problems),
              ElementsAre("--workers: must be from 0 to 1024, got -1; 0 = one per CPU core",
                          "--slots: must be from 0 to 1024, got 100000; 0 = automatic"));
}

TEST(FlagChecksTest, SecondsMustBeFiniteAndPositive) {
  ProblemList problems;
  CheckFlagSeconds("heartbeat_timeout", 0.5, "h", &problems);
  EXPECT_TRUE(problems.empty());
  for (double bad : {0.0, -3.0, std::numeric_limits<double>::quiet_NaN(),
                     std::numeric_limits<double>::infinity()}) {
    CheckFlagSeconds("heartbeat_timeout", bad, "seconds without a heartbeat", &problems);
  }
  EXPECT_THAT(Lines(problems),
              ElementsAre("--heartbeat_timeout: must be > 0, got 0; seconds without a heartbeat",
                          "--heartbeat_timeout: must be > 0, got -3; seconds without a heartbeat",
                          "--heartbeat_timeout: must be > 0, got nan; seconds without a heartbeat",
                          "--heartbeat_timeout: must be > 0, got inf; seconds without a "
                          "heartbeat"));
}

TEST(FlagChecksTest, AddressesAreHostAndPort) {
  ProblemList problems;
  CheckFlagAddress("server", "127.0.0.1:50051", "HOST:PORT", &problems);
  CheckFlagAddress("server", "[::1]:0", "HOST:PORT", &problems);
  EXPECT_TRUE(problems.empty());
  CheckFlagAddress("server", "garbage", "HOST:PORT", &problems);
  CheckFlagAddress("listen", "0.0.0.0:70000", "HOST:PORT", &problems);
  CheckFlagAddress("server", "", "the address of the fedsim server, HOST:PORT", &problems);
  EXPECT_THAT(
      Lines(problems),
      ElementsAre("--server: address 'garbage' is not HOST:PORT: no port",
                  "--listen: address '0.0.0.0:70000' is not HOST:PORT: the port must be a number "
                  "from 0 to 65535, got '70000'",
                  "--server: is required: the address of the fedsim server, HOST:PORT"));
}

TEST(FlagChecksTest, ReportPrintsEveryProblemAndReturnsTheUsageCode) {
  ProblemList problems;
  CheckFlagRange("workers", -1, 0, 8, "0 = one per CPU core", &problems);
  CheckFlagRange("slots", -3, 0, 8, "0 = automatic", &problems);
  char* text = nullptr;
  size_t size = 0;
  FILE* out = open_memstream(&text, &size);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(ReportFlagProblems("run", problems, out), 2);
  std::fclose(out);
  EXPECT_EQ(std::string(text, size),
            "fedsim run: --workers: must be from 0 to 8, got -1; 0 = one per CPU core\n"
            "fedsim run: --slots: must be from 0 to 8, got -3; 0 = automatic\n"
            "(see 'fedsim run --help')\n");
  free(text);
}

}  // namespace
}  // namespace fedsim
