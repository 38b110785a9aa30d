// Syntax errors with file:line:col, through the scenario pipeline, and the
// parser on a message type other than Scenario.
#include "config/diagnostics.h"

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

TEST(ScenarioSyntaxTest, MissingColonNamesLineAndColumn) {
  auto s = Parse("num_clients: 5\nlocal {\n  lr 0.1\n}\n");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ErrorLines(s.status()), ElementsAre(StartsWith("x.textproto:3:6: Expected \":\"")));
}

TEST(ScenarioSyntaxTest, MissingCloseBraceAtEndOfFile) {
  auto s = Parse("local {\n  lr: 0.1\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(ErrorLines(s.status()),
              ElementsAre(AllOf(StartsWith("x.textproto:3:1: "), HasSubstr("'}' missing"))));
}

TEST(ScenarioSyntaxTest, UnknownFieldPointsAtItsNameWithDidYouMean) {
  auto s = Parse("num_clients: 5\n  local { lrr: 0.1 }\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(ErrorLines(s.status()),
              ElementsAre("x.textproto:2:11: no field 'lrr' in LocalTraining (did you mean "
                          "'lr'?)"));
}

TEST(ScenarioSyntaxTest, UnknownTopLevelFieldListsNoSuggestionWhenNothingIsClose) {
  auto s = Parse("zzzzzzzz: 1\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(Msg(s.status()), AllOf(StartsWith("x.textproto:1:1: no field 'zzzzzzzz' in Scenario"),
                                     HasSubstr("num_clients")));
}

TEST(ScenarioSyntaxTest, StringForNumber) {
  auto s = Parse("seed: 3\nnum_clients: \"ten\"\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(ErrorLines(s.status()),
              ElementsAre(AllOf(StartsWith("x.textproto:2:14: "), HasSubstr("integer"))));
}

TEST(ScenarioSyntaxTest, MisspeltEnumValue) {
  auto s = Parse("algorithm { fedavg { weighting: EXAMPELS } }\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(ErrorLines(s.status()),
              ElementsAre("x.textproto:1:33: unknown value 'EXAMPELS' for field 'weighting' "
                          "(did you mean 'EXAMPLES'?)"));
}

TEST(ScenarioSyntaxTest, ReportsEveryIndependentError) {
  const std::string text =
      "num_clients: \"x\"\n"                                   // line 1
      "local { lrr: 0.1 epochs: 2 }\n"                         // line 2
      "seed: 1\n"                                              // line 3
      "algorithm { fedavg { weighting: EXAMPELS } }\n"         // line 4
      "stop {\n  max_commits: 5\n  target_acuracy: 0.8\n}\n";  // line 7
  auto s = Parse(text);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(
      ErrorLines(s.status()),
      ElementsAre(StartsWith("x.textproto:1:14: "), StartsWith("x.textproto:2:9: no field 'lrr'"),
                  StartsWith("x.textproto:4:33: unknown value 'EXAMPELS'"),
                  StartsWith("x.textproto:7:3: no field 'target_acuracy' in Stop (did "
                             "you mean 'target_accuracy'?)")));
}

TEST(ScenarioSyntaxTest, DuplicateFieldAndOneofConflict) {
  auto s = Parse("num_clients: 5\nnum_clients: 6\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(Msg(s.status()),
              AllOf(StartsWith("x.textproto:2:1: "), HasSubstr("specified multiple times")));
  s = Parse("algorithm {\n  fedavg {}\n  fedbuff {}\n}\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(Msg(s.status()),
              AllOf(StartsWith("x.textproto:3:3: Field \"fedbuff\""), HasSubstr("oneof")));
}

TEST(ScenarioSyntaxTest, TabsCountAsOneColumn) {
  auto s = Parse("local {\n\tlrr: 0.1\n}\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(Msg(s.status()), StartsWith("x.textproto:2:2: no field 'lrr'"));
}

// The parser is not tied to Scenario: any message type, its own field names.
TEST(DiagnosticsTest, ParsesAnyMessageTypeWithLocations) {
  config::LocalTraining local;
  SourceMap sources;
  ASSERT_TRUE(ParseTextWithSources("epochs: 2\n  lr: 0.5\n", "l.textproto", &local, &sources).ok());
  EXPECT_EQ(local.epochs(), 2u);
  EXPECT_DOUBLE_EQ(local.lr(), 0.5);
  ASSERT_TRUE(sources.Find("lr").has_value());
  EXPECT_EQ(sources.Find("lr")->line, 2);
  EXPECT_EQ(sources.Find("lr")->column, 3);
  EXPECT_EQ(sources.Describe("lr"), "l.textproto:2:3: lr");
  EXPECT_EQ(sources.Describe("momentum"), "l.textproto: momentum (default)");

  config::LocalTraining bad;
  absl::Status s = ParseTextWithSources("lrr: 1\nbatch_size: x\n", "l.textproto", &bad, nullptr);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ErrorLines(s),
              ElementsAre("l.textproto:1:1: no field 'lrr' in LocalTraining (did you mean 'lr'?)",
                          StartsWith("l.textproto:2:13: ")));
  // Enum values are looked up among the enum fields of the type being parsed.
  config::Clock clock;
  s = ParseTextWithSources("mode: VIRTUL\n", "", &clock, nullptr);
  EXPECT_EQ(Msg(s),
            "<scenario>:1:7: unknown value 'VIRTUL' for field 'mode' (did you mean "
            "'VIRTUAL'?)");
}

TEST(BlankTextTest, OnlyBlanksAndCommentsAreBlank) {
  for (const char* blank : {"", "\n \t\r\n# stop { max_commits: 3 }\n  # more\n", "\xEF\xBB\xBF"}) {
    EXPECT_TRUE(IsBlankText(blank)) << blank;
  }
  // Half a byte-order mark is not nothing.
  for (const char* text : {"num_clients: 5", "# a\n  seed: 1 # b\n", "\xEF\xBB"}) {
    EXPECT_FALSE(IsBlankText(text)) << text;
  }
}

}  // namespace
}  // namespace fedsim
