#include "compare/comparison_file.h"

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

TEST(ComparisonFileTest, ParsesAndFillsDefaults) {
  auto c = ParseComparisonText(
      "scenario: \"../base.textproto\"\n"
      "arms { name: \"a\" }\n"
      "arms { name: \"b\" set: \"local.lr=0.5\" note: \"faster\" }\n",
      "scenarios/compare/my_cmp.textproto");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->spec.name(), "my_cmp");
  ASSERT_EQ(c->spec.seeds_size(), 1);
  EXPECT_EQ(c->spec.seeds(0), 1u);
  EXPECT_EQ(c->base_scenario, "scenarios/base.textproto");
  EXPECT_EQ(c->spec.final_evals(), 1u);
  EXPECT_EQ(c->spec.out_dir(), "runs");
  EXPECT_FALSE(c->spec.has_target());
  EXPECT_EQ(c->spec.arms(1).note(), "faster");
}

TEST(ComparisonFileTest, AbsoluteBaseStaysAsWritten) {
  auto c =
      ParseComparisonText("scenario: \"/x/y.textproto\" arms { name: \"a\" }", "d/c.textproto");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->base_scenario, "/x/y.textproto");
}

TEST(ComparisonFileTest, UnknownFieldIsAnErrorWithItsPosition) {
  auto c = ParseComparisonText("scenario: \"b.textproto\"\narms { nme: \"a\" }\n", "f.textproto");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(Msg(c.status()), HasSubstr("f.textproto:2:8: no field 'nme'"));
  EXPECT_THAT(Msg(c.status()), HasSubstr("did you mean 'name'"));
}

TEST(ComparisonFileTest, ReportsEveryProblemWithItsLine) {
  auto c = ParseComparisonText(
      "arms { name: \"a\" }\n"
      "arms { name: \"a\" set: \"seed=3\" }\n"
      "arms { name: \"bad/name\" }\n"
      "seeds: [1, 1]\n"
      "target { accuracy: 1.5 }\n"
      "final_evals: 0\n",
      "f.textproto");
  ASSERT_FALSE(c.ok());
  const std::string m = Msg(c.status());
  EXPECT_THAT(m, HasSubstr("f.textproto: scenario (default): is required"));
  EXPECT_THAT(m, HasSubstr("f.textproto:2:8: arms[1].name: 'a' is used by arms[0] too"));
  EXPECT_THAT(m, HasSubstr("f.textproto:2:18: arms[1].set[0]: may not set 'seed'"));
  EXPECT_THAT(m, HasSubstr("f.textproto:3:8: arms[2].name: 'bad/name' is not a valid folder name"));
  EXPECT_THAT(m, HasSubstr("seeds[1]: seed 1 is listed twice"));
  EXPECT_THAT(m, HasSubstr("f.textproto:5:10: target.accuracy: must be in (0, 1], got 1.5"));
  EXPECT_THAT(m, HasSubstr("f.textproto:6:1: final_evals: must be >= 1"));
}

TEST(ComparisonFileTest, NeedsAnArmAndRejectsNameOverrides) {
  auto c = ParseComparisonText("scenario: \"b\"\nset: \"name=x\"\n", "f.textproto");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(Msg(c.status()), HasSubstr("arms (default): at least one arm is required"));
  EXPECT_THAT(Msg(c.status()), HasSubstr("f.textproto:2:1: set[0]: may not set 'name'"));
}

TEST(ComparisonFileTest, OverridesApplyInOrderWithTheSeedLast) {
  auto c = ParseComparisonText(
      "scenario: \"b\" set: \"num_clients=5\" arms { name: \"a\" set: [\"local.lr=1\", "
      "\"local.steps=2\"] }",
      "f.textproto");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_THAT(ArmOverrides(*c, 0, {"stop.max_commits=3"}, 7),
              ::testing::ElementsAre("num_clients=5", "local.lr=1", "local.steps=2",
                                     "stop.max_commits=3", "seed=7"));
}

TEST(ComparisonFileTest, MissingFileIsNotFound) {
  absl::Status s = LoadComparison("scenarios/compare/nope.textproto").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(),
            "cannot read the comparison file scenarios/compare/nope.textproto: no such file or "
            "directory");
  s = LoadComparison("scenarios/compare").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("is a directory, not a file"));
}

TEST(ComparisonFileTest, EmptyFileIsSaidToBeEmptyAndAByteOrderMarkIsSkipped) {
  const std::string empty = ::testing::TempDir() + "/comparison_file_test_empty.textproto";
  std::ofstream(empty, std::ios::binary) << "# nothing yet\n";
  EXPECT_THAT(std::string(LoadComparison(empty).status().message()),
              ::testing::StartsWith(empty + ": the comparison file is empty"));
  const std::string bom = ::testing::TempDir() + "/comparison_file_test_bom.textproto";
  std::ofstream(bom, std::ios::binary) << "\xEF\xBB\xBFscenario: \"b\"\r\narms { name: \"a\" }\r\n";
  absl::StatusOr<ComparisonFile> c = LoadComparison(bom);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->spec.arms(0).name(), "a");
}

TEST(ComparisonFileTest, NamesAreFolderNames) {
  EXPECT_TRUE(ValidComparisonName("fedau_k50.v2-x"));
  EXPECT_FALSE(ValidComparisonName(""));
  EXPECT_FALSE(ValidComparisonName(".."));
  EXPECT_FALSE(ValidComparisonName("a b"));
  EXPECT_FALSE(ValidComparisonName("a/b"));
}

}  // namespace
}  // namespace fedsim
