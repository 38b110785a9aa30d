#include "sim/scenario.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A valid minimal scenario: defaults do the rest.
constexpr char kMinimal[] = R"(num_clients: 20
stop { max_commits: 3 }
)";

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

std::vector<std::string> ErrorLines(const absl::Status& s) {
  return absl::StrSplit(std::string(s.message()), '\n');
}

absl::StatusOr<config::Scenario> Parse(const std::string& text,
                                       const std::vector<std::string>& overrides = {}) {
  return ParseScenarioText(text, "x.textproto", overrides);
}

// ------------------------------------------------------------ syntax

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

// ------------------------------------------------------------ semantics

TEST(ScenarioValidateTest, MinimalScenarioIsValid) {
  auto s = Parse(kMinimal);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->name(), "x");
  EXPECT_TRUE(s->algorithm().has_fedavg());
}

TEST(ScenarioValidateTest, BufferLargerThanConcurrencyPointsAtTheField) {
  const std::string text =
      "num_clients: 100\n"
      "algorithm {\n"
      "  fedbuff {\n"
      "    buffer_size: 30\n"
      "    concurrency: 20\n"
      "  }\n"
      "}\n"
      "stop { max_commits: 5 }\n";
  auto s = Parse(text);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(ErrorLines(s.status()),
              ElementsAre(AllOf(StartsWith("x.textproto:4:5: algorithm.fedbuff.buffer_size: "
                                           "30 is larger than concurrency 20"),
                                HasSubstr("never fill"), HasSubstr("lower buffer_size"))));
}

TEST(ScenarioValidateTest, ReportsAllProblemsInFileOrder) {
  const std::string text =
      "name: \"bad name\"\n"                                 // 1
      "num_clients: 5\n"                                     // 2
      "local {\n"                                            // 3
      "  lr: -1\n"                                           // 4
      "  batch_size: 0\n"                                    // 5
      "}\n"                                                  // 6
      "devices {\n"                                          // 7
      "  seconds_per_example { uniform { lo: 2 hi: 1 } }\n"  // 8
      "  latency_up_s { table { values: [1, 2] } }\n"        // 9
      "}\n";
  auto s = Parse(text);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(
      ErrorLines(s.status()),
      ElementsAre(
          StartsWith("x.textproto:1:1: name: 'bad name' may contain only"),
          StartsWith("x.textproto:4:3: local.lr: must be > 0, got -1"),
          StartsWith("x.textproto:5:3: local.batch_size: must be > 0"),
          StartsWith("x.textproto:8:25: devices.seconds_per_example.uniform: lo 2 is greater "
                     "than hi 1; swap them"),
          StartsWith("x.textproto:9:26: devices.latency_up_s.table.values: has 2 values but "
                     "num_clients is 5"),
          // Defaults have no line: the file name and "(default)".
          StartsWith("x.textproto: algorithm.fedavg.clients_per_round (default): 10 is outside "
                     "[1, num_clients = 5]"),
          StartsWith("x.textproto: stop (default): has no condition")));
}

TEST(ScenarioValidateTest, AlgorithmChecks) {
  EXPECT_THAT(Msg(Parse("num_clients: 10 stop { max_commits: 1 } "
                        "algorithm { fedavg { clients_per_round: 5 over_select: 3 } }")
                      .status()),
              HasSubstr("algorithm.fedavg.over_select: 3 must be 0 (off) or in"));
  EXPECT_THAT(Msg(Parse("num_clients: 10 stop { max_commits: 1 } "
                        "algorithm { fedasync { alpha: 0 concurrency: 11 } }")
                      .status()),
              AllOf(HasSubstr("algorithm.fedasync.alpha: 0 is outside (0, 1]"),
                    HasSubstr("algorithm.fedasync.concurrency: 11 is larger than num_clients")));
  EXPECT_THAT(
      Msg(Parse("num_clients: 10 stop { max_commits: 1 } algorithm { fedfix {} }").status()),
      HasSubstr("algorithm.fedfix: has no window"));
  EXPECT_THAT(Msg(Parse("num_clients: 10 stop { max_commits: 1 } "
                        "algorithm { fedfix { delta_fraction: -0.5 } }")
                      .status()),
              HasSubstr("algorithm.fedfix.delta_fraction: must be > 0"));
  EXPECT_THAT(Msg(Parse("num_clients: 10 stop { max_commits: 1 } "
                        "algorithm { fedbuff { buffer_size: 0 concurrency: 5 } }")
                      .status()),
              HasSubstr("algorithm.fedbuff.buffer_size: must be >= 1"));
}

TEST(ScenarioValidateTest, OtherChecks) {
  auto msg = [](const std::string& text) { return Msg(Parse(text).status()); };
  EXPECT_THAT(msg("num_clients: 0 stop { max_commits: 1 }"), HasSubstr("num_clients: must be > 0"));
  EXPECT_THAT(msg("num_clients: 10 stop { target_accuracy: 1.5 }"),
              HasSubstr("stop.target_accuracy: 1.5 is outside (0, 1]"));
  EXPECT_THAT(msg("num_clients: 10 stop { max_commits: 1 } partition { dirichlet { alpha: 0 } }"),
              HasSubstr("partition.dirichlet.alpha: must be > 0"));
  EXPECT_THAT(msg("num_clients: 10 stop { max_commits: 1 } partition { natural {} }"),
              HasSubstr("partition.natural: only Synthetic data"));
  EXPECT_THAT(msg("num_clients: 10 stop { max_commits: 1 } local { epochs: 0 }"),
              HasSubstr("local.epochs: epochs and steps are both 0"));
  EXPECT_THAT(
      msg("num_clients: 10 stop { max_commits: 1 } "
          "devices { seconds_per_example { linear { x_percent: 100 } } }"),
      HasSubstr("devices.seconds_per_example.linear.x_percent: x_percent 100 is outside [0, "
                "100)"));
  EXPECT_THAT(msg("num_clients: 10 stop { max_commits: 1 } "
                  "devices { down_mbps { lognormal { sigma: -1 } } }"),
              HasSubstr("devices.down_mbps.lognormal.sigma: sigma -1 is negative"));
  EXPECT_THAT(msg("num_clients: 10 stop { max_commits: 1 } "
                  "participation { bernoulli {} probability { distribution { constant: 1.5 } } }"),
              HasSubstr("participation.probability.distribution.constant: probability 1.5 is "
                        "outside [0, 1]"));
  EXPECT_THAT(msg("num_clients: 10 stop { max_commits: 1 }\n"
                  "events { at_s: -1 clients: [3, 10] leave: true }"),
              AllOf(HasSubstr("x.textproto:2:10: events[0].at_s: -1 is not a time >= 0"),
                    HasSubstr("x.textproto:2:19: events[0].clients[1]: client 10 does not "
                              "exist")));
}

// ------------------------------------------------------------ --set

TEST(ScenarioOverrideTest, NestedScalar) {
  auto s = Parse(kMinimal, {"local.lr=0.05", "num_clients=100", "name=sweep_1"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_DOUBLE_EQ(s->local().lr(), 0.05);
  EXPECT_EQ(s->num_clients(), 100u);
  EXPECT_EQ(s->name(), "sweep_1");
}

TEST(ScenarioOverrideTest, FieldInsideOneofMemberSwitchesTheRule) {
  auto s = Parse(std::string(kMinimal) + "algorithm { fedavg { clients_per_round: 5 } }",
                 {"algorithm.fedbuff.buffer_size=5"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->algorithm().has_fedavg());
  ASSERT_TRUE(s->algorithm().has_fedbuff());
  EXPECT_EQ(s->algorithm().fedbuff().buffer_size(), 5u);
  EXPECT_EQ(s->algorithm().fedbuff().concurrency(), 20u);  // default filled in
  EXPECT_TRUE(s->algorithm().fedbuff().staleness().has_polynomial());
}

TEST(ScenarioOverrideTest, RepeatedField) {
  auto s = Parse(kMinimal, {"model.mlp.hidden=[100,50]"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->model().mlp().hidden(), ElementsAre(100, 50));
  // Absl's vector flag splits at commas; the pieces are joined back.
  s = Parse(kMinimal, {"model.mlp.hidden=[100", "50]", "local.lr=0.2"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->model().mlp().hidden(), ElementsAre(100, 50));
  EXPECT_DOUBLE_EQ(s->local().lr(), 0.2);
  s = Parse(kMinimal, {"model.mlp.hidden=64", "32"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->model().mlp().hidden(), ElementsAre(64, 32));
  s = Parse(kMinimal, {"model.mlp.hidden[0]=7"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->model().mlp().hidden(), ElementsAre(7));  // appended to an empty list
  s = Parse(kMinimal, {"model.mlp.hidden=[1,2]", "model.mlp.hidden[1]=9"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->model().mlp().hidden(), ElementsAre(1, 9));
  s = Parse(kMinimal, {"model.mlp.hidden[3]=9"});
  EXPECT_THAT(Msg(s.status()), HasSubstr("index 3 is out of range"));
}

TEST(ScenarioOverrideTest, MessageInBraces) {
  auto s = Parse(std::string(kMinimal) + "partition { shards {} }",
                 {"partition={dirichlet{alpha:0.1}}"});
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->partition().has_dirichlet());
  EXPECT_DOUBLE_EQ(s->partition().dirichlet().alpha(), 0.1);
  EXPECT_EQ(s->partition().dirichlet().min_size(), 10u);
  s = Parse(kMinimal, {"events[0]={at_s: 5 clients: [1, 2] join: true}"});
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->events_size(), 1);
  EXPECT_THAT(s->events(0).clients(), ElementsAre(1, 2));
}

TEST(ScenarioOverrideTest, UnknownFieldWithDidYouMean) {
  auto s = Parse(kMinimal, {"local.lrr=0.1"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(Msg(s.status()),
            "--set local.lrr=0.1: no field 'lrr' in LocalTraining (did you mean 'lr'?)");
  s = Parse(kMinimal, {"algoritm.fedavg.server_lr=1"});
  EXPECT_EQ(Msg(s.status()),
            "--set algoritm.fedavg.server_lr=1: no field 'algoritm' in Scenario (did you mean "
            "'algorithm'?)");
}

TEST(ScenarioOverrideTest, BadValues) {
  auto s = Parse(kMinimal, {"num_clients=abc"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(Msg(s.status()),
              StartsWith("--set num_clients=abc: bad value for num_clients: expected a "
                         "non-negative integer"));
  s = Parse(kMinimal, {"algorithm.fedavg.weighting=UNIFROM"});
  EXPECT_THAT(Msg(s.status()), HasSubstr("(did you mean 'UNIFORM'?)"));
  s = Parse(kMinimal, {"local.lr"});
  EXPECT_THAT(Msg(s.status()), HasSubstr("expected path.to.field=value"));
  s = Parse(kMinimal, {"local.lr.x=1"});
  EXPECT_THAT(Msg(s.status()), HasSubstr("'lr' in LocalTraining is not a message"));
  s = Parse(kMinimal, {"events.at_s=1"});
  EXPECT_THAT(Msg(s.status()), HasSubstr("'events' is repeated; give an index"));
  // Every bad override is reported.
  s = Parse(kMinimal, {"local.lrr=1", "num_clients=x"});
  EXPECT_EQ(ErrorLines(s.status()).size(), 2u);
}

TEST(ScenarioOverrideTest, SemanticErrorSaysFromSet) {
  auto s = Parse(kMinimal, {"local.lr=-2"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(Msg(s.status()),
              StartsWith("x.textproto: local.lr (from --set): must be > 0, got -2"));
}

// ------------------------------------------------------------ defaults, text, hash

TEST(ScenarioDefaultsTest, FillDefaultsShowsDefaultsAndIsIdempotent) {
  config::Scenario s;
  FillDefaults(&s);
  const std::string once = ScenarioToText(s);
  FillDefaults(&s);
  EXPECT_EQ(ScenarioToText(s), once);
  EXPECT_THAT(once, HasSubstr("fashion_mnist {\n    dir: \"/usr/share/datasets/fashion-mnist\""));
  EXPECT_THAT(once, HasSubstr("iid {\n"));
  EXPECT_THAT(once, HasSubstr("hidden: 200\n    hidden: 200"));
  EXPECT_THAT(once, HasSubstr("clients_per_round: 10"));
  EXPECT_THAT(once, HasSubstr("seconds_per_example {\n    constant: 0.001"));
  EXPECT_THAT(once, HasSubstr("always {\n"));
  EXPECT_THAT(once, HasSubstr("lr: 0.1"));
  EXPECT_THAT(once, HasSubstr("mode: VIRTUAL"));
  EXPECT_THAT(once, HasSubstr("dir: \"runs\""));
  EXPECT_THAT(once, HasSubstr("num_clients: 10"));
  EXPECT_THAT(once, HasSubstr("seed: 1"));
  EXPECT_EQ(s.name(), "scenario");
}

TEST(ScenarioDefaultsTest, SyntheticDefaultsToNaturalAndAsyncRulesGetStaleness) {
  config::Scenario s;
  s.mutable_dataset()->mutable_synthetic();
  s.mutable_algorithm()->mutable_fedasync();
  FillDefaults(&s);
  EXPECT_TRUE(s.partition().has_natural());
  EXPECT_DOUBLE_EQ(s.algorithm().fedasync().staleness().polynomial().a(), 0.5);
  EXPECT_DOUBLE_EQ(s.algorithm().fedasync().alpha(), 0.6);
}

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

// ------------------------------------------------------------ files

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
