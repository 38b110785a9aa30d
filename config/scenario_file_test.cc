// The file pipeline: loading, canonical text, hash, folders.
#include "config/scenario_file.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "config/scenario_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ScenarioDefaultsTest, ResolvedTextParsesBackToTheSameScenario) {
  auto s = Parse(kMinimal, {"algorithm.fedbuff.buffer_size=5"});
  ASSERT_TRUE(s.ok()) << s.status();
  auto again = ParseScenarioText(ScenarioToText(*s), "y.textproto", {});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(ScenarioToText(*again), ScenarioToText(*s));
  EXPECT_EQ(ScenarioHash(*again), ScenarioHash(*s));
  EXPECT_EQ(ScenarioHash(*s).size(), 64u);
  auto other = Parse(kMinimal, {"algorithm.fedbuff.buffer_size=6"});
  ASSERT_TRUE(other.ok());
  EXPECT_NE(ScenarioHash(*other), ScenarioHash(*s));
}

TEST(ScenarioFilesTest, EveryShippedScenarioValidates) {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("scenarios")) {
    if (entry.path().extension() != ".textproto") continue;
    ++count;
    auto s = LoadScenario(entry.path().string(), {});
    EXPECT_TRUE(s.ok()) << entry.path() << ": " << s.status();
    if (s.ok()) {
      EXPECT_EQ(s->name(), entry.path().stem().string());
    }
  }
  EXPECT_GE(count, 3);
}

TEST(ScenarioFilesTest, MissingFileIsNotFound) {
  auto s = LoadScenario("scenarios/does_not_exist.textproto", {});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
}

TEST(ScenarioFilesTest, ErrorsNameTheFile) {
  const std::string path = testing::TempDir() + "/scenario_test_bad.textproto";
  std::ofstream(path) << "# comment\nnum_clients: 5\nlocal { lrr: 1 }\n";
  auto s = LoadScenario(path, {});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(Msg(s.status()), StartsWith(path + ":3:9: no field 'lrr'"));
  EXPECT_EQ(ScenarioDir("a/b/c.textproto"), "a/b");
  EXPECT_EQ(ScenarioDir("/c.textproto"), "/");
  EXPECT_EQ(ScenarioDir("x.textproto"), ".");
}

}  // namespace
}  // namespace fedsim
