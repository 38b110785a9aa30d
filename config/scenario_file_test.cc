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

// Regression: the message used to be "cannot open the scenario file" with
// no reason.
TEST(ScenarioFilesTest, MissingFileIsNotFoundWithTheReason) {
  auto s = LoadScenario("scenarios/does_not_exist.textproto", {});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Msg(s.status()),
            "cannot read the scenario file scenarios/does_not_exist.textproto: no such file or "
            "directory");
  // A file where a folder should be: ENOTDIR, with the file named.
  s = LoadScenario("scenarios/quickstart.textproto/x.textproto", {});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(Msg(s.status()), HasSubstr(": not a directory (a folder on the way, "
                                         "scenarios/quickstart.textproto, is a file)"));
}

// Regression: a directory given as the scenario file read as an empty file,
// so `fedsim validate /tmp` went on with the default scenario.
TEST(ScenarioFilesTest, DirectoryIsRefused) {
  auto s = LoadScenario("scenarios", {"stop.max_commits=3"});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(s.status()), "cannot read the scenario file scenarios: is a directory, not a file");
}

class ScenarioFileOnDiskTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = testing::TempDir() + "/scenario_file_test_" + name;
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }
};

// Regression: an empty file was reported as "stop (default): has no
// condition", as if the user had forgotten only the stop condition.
TEST_F(ScenarioFileOnDiskTest, EmptyFileIsSaidToBeEmpty) {
  const std::string empty = Write("empty.textproto", "");
  auto s = LoadScenario(empty, {});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Msg(s.status()), empty +
                                 ": the scenario file is empty; a scenario sets at least stop { "
                                 "max_commits: N } (see scenarios/quickstart.textproto)");
  // Overrides do not make an empty file any less of a mistake.
  EXPECT_THAT(Msg(LoadScenario(empty, {"stop.max_commits=3"}).status()), HasSubstr("is empty"));
  const std::string comments = Write("comments.textproto", "\xEF\xBB\xBF# a\r\n\n   # b\n\t\n");
  EXPECT_THAT(Msg(LoadScenario(comments, {}).status()),
              StartsWith(comments + ": the scenario file is empty (only blanks and comments)"));
}

// Regression: a UTF-8 byte-order mark (Notepad's "UTF-8") was rejected as
// "Interpreting non ascii codepoint 187"; it is skipped, and columns on the
// first line count from after it, as editors show them.
TEST_F(ScenarioFileOnDiskTest, ByteOrderMarkIsSkipped) {
  const std::string path =
      Write("bom.textproto", std::string("\xEF\xBB\xBF") + kMinimal + "name: \"bom\"\r\n");
  auto s = LoadScenario(path, {});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->name(), "bom");
  EXPECT_EQ(s->num_clients(), 20u);
  const std::string bad = Write("bom_bad.textproto", "\xEF\xBB\xBFnum_clientz: 20\n");
  EXPECT_THAT(Msg(LoadScenario(bad, {}).status()),
              StartsWith(bad + ":1:1: no field 'num_clientz'"));
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
