// Semantic checks of whole scenarios, located by file:line:col, --set or
// "(default)".
#include "config/validate.h"

#include <memory>
#include <string>
#include <vector>

#include "algorithms/registry.h"
#include "config/diagnostics.h"
#include "config/fleet.h"
#include "config/scenario_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

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
  EXPECT_THAT(msg("num_clients: 10 stop { max_commits: 1 } partition { label_mix { alpha: -1 } }"),
              HasSubstr("partition.label_mix.alpha: must be > 0"));
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

TEST(ScenarioValidateTest, DeploymentChecks) {
  auto msg = [](const std::string& text) { return Msg(Parse(text).status()); };
  EXPECT_THAT(msg("num_clients: 4 stop { max_commits: 1 } "
                  "deployment { clients_file: \"i.csv\" admit_clients: true }"),
              HasSubstr("deployment.admit_clients: is set together with deployment.clients_file"));
  EXPECT_THAT(msg("num_clients: 4 stop { max_commits: 1 } "
                  "deployment { admit_clients: true central_test_set: true }"),
              HasSubstr("deployment.central_test_set: cannot be used with"));
  EXPECT_THAT(msg("num_clients: 4 stop { max_commits: 1 } deployment { start_with_clients: 5 }"),
              HasSubstr("deployment.start_with_clients: is 5, more than the run's 4 clients"));
  EXPECT_THAT(msg("num_clients: 4 stop { max_commits: 1 } deployment { eval_timeout_s: 0 }"),
              HasSubstr("deployment.eval_timeout_s: is 0"));
  EXPECT_THAT(msg("num_clients: 4 stop { max_commits: 1 } deployment { start_timeout_s: -1 }"),
              HasSubstr("deployment.start_timeout_s: is -1"));
  auto ok = Parse(
      "num_clients: 10 stop { max_commits: 1 } deployment { admit_clients: true "
      "start_with_clients: 10 }");
  EXPECT_TRUE(ok.ok()) << ok.status();
}

// A rule's check exists once: scenario validation and the rule's factory
// report the same words (the registry row's validator).
TEST(ScenarioValidateTest, RuleChecksAreTheFactorysChecks) {
  const std::string text =
      "num_clients: 10 stop { max_commits: 1 }\n"
      "algorithm { fedbuff { buffer_size: 0 concurrency: 5 } }\n";
  auto s = Parse(text);
  ASSERT_FALSE(s.ok());
  const std::string what = "algorithm.fedbuff.buffer_size: must be >= 1, got 0; the paper uses 10";
  EXPECT_THAT(ErrorLines(s.status()), ElementsAre("x.textproto:2:23: " + what));
  config::Scenario parsed;
  ASSERT_TRUE(ParseTextWithSources(text, "", &parsed, nullptr).ok());
  absl::StatusOr<std::unique_ptr<Algorithm>> a =
      NewAlgorithm(parsed.algorithm(), AlgorithmContext{.num_clients = 10});
  EXPECT_EQ(Msg(a.status()), what);
}

TEST(ScenarioValidateTest, ModelAndFleetSections) {
  EXPECT_THAT(Msg(Parse("num_clients: 10 stop { max_commits: 1 } dataset { synthetic {} } "
                        "model { cnn {} }")
                      .status()),
              HasSubstr("x.textproto:1:74: model.cnn: a CNN needs image input"));
  EXPECT_THAT(Msg(Parse("num_clients: 10 stop { max_commits: 1 }\n"
                        "participation { markov { a: 0 } }")
                      .status()),
              StartsWith("x.textproto:2:26: participation.markov.a: 0 is outside (0, 1]"));
  ProblemList p;
  config::Participation part;
  part.mutable_cyclic()->set_period(0);
  part.mutable_probability()->mutable_distribution()->mutable_table()->add_values(0.5);
  ValidateParticipation(part, 3, &p);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p.problems()[0].path, "participation.cyclic.period");
  EXPECT_EQ(p.problems()[1].path, "participation.probability.distribution.table.values");
}

}  // namespace
}  // namespace fedsim

namespace fedsim {
namespace {

// The local-training blocks (SAM, adversarial) are checked with the rest of
// the scenario, so `fedsim validate` finds their mistakes before a run
// would fail inside a task.
TEST(ScenarioValidateTest, LocalTrainingBlocksAreChecked) {
  const std::string text =
      "num_clients: 4\n"            // 1
      "local {\n"                   // 2
      "  sam { rho: -0.5 }\n"       // 3
      "  adversarial { eps: 0 }\n"  // 4
      "}\n"                         // 5
      "stop { max_commits: 1 }\n";  // 6
  auto s = Parse(text);
  ASSERT_FALSE(s.ok());
  const std::vector<std::string> lines = ErrorLines(s.status());
  ASSERT_GE(lines.size(), 2u) << s.status();
  EXPECT_THAT(lines[0], StartsWith("x.textproto:3:9: local.sam.rho: must be > 0, got -0.5"));
  EXPECT_THAT(lines[1], StartsWith("x.textproto:4:17: local.adversarial.eps"));
}

// eval.robust is checked by its owner (runtime/robust_recipe.h), with the
// position of the bad value.
TEST(ScenarioValidateTest, RobustEvaluationIsChecked) {
  const std::string text =
      "num_clients: 20\n"             // 1
      "eval {\n"                      // 2
      "  robust {\n"                  // 3
      "    attack: FGSM steps: 20\n"  // 4
      "    clip_min: 2\n"             // 5
      "  }\n"                         // 6
      "}\n"                           // 7
      "stop { max_commits: 1 }\n";    // 8
  auto s = Parse(text);
  ASSERT_FALSE(s.ok());
  const std::vector<std::string> lines = ErrorLines(s.status());
  ASSERT_EQ(lines.size(), 2u) << s.status();
  EXPECT_THAT(lines[0], StartsWith("x.textproto:4:18: eval.robust.steps: FGSM takes exactly one"));
  EXPECT_THAT(lines[1],
              StartsWith("x.textproto:5:5: eval.robust.clip_min: the valid range [2, 1]"));
  EXPECT_TRUE(
      Parse("num_clients: 20\neval { robust { fgsm: true } }\nstop { max_commits: 1 }\n").ok());
}

TEST(ScenarioValidateTest, NumericModeMustBeChosen) {
  auto s = Parse("numeric { mode: MODE_UNSPECIFIED }\nstop { max_commits: 1 }\n");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("numeric.mode: is unspecified"));
}

}  // namespace
}  // namespace fedsim
