#include "compare/summary.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

MetricsTable Table() {
  // Three evaluations; 10 updates with mean staleness 1, then 30 with 3.
  return *ParseMetricsCsv(
      "virtual_time,version,updates_applied,updates_dropped,test_loss,test_accuracy,bytes_down,"
      "bytes_up,mean_staleness,max_staleness,consensus_distance\n"
      "0,0,0,0,2.3,0.10,0,0,0,0,\n"
      "10,2,10,0,1.0,0.82,1000,2000,1,2,0.5\n"
      "20,5,40,1,0.9,0.78,3000,6000,3,5,0.25\n",
      "m.csv");
}

TEST(SummaryTest, FiguresOfOneRun) {
  compare::Comparison spec;
  spec.set_final_evals(2);
  spec.mutable_target()->set_accuracy(0.8);
  auto r = FiguresOfRun(Table(), spec);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(r->final_accuracy, (0.82 + 0.78) / 2);
  EXPECT_DOUBLE_EQ(r->best_accuracy, 0.82);
  ASSERT_TRUE(r->time_to_target.has_value());
  EXPECT_DOUBLE_EQ(*r->time_to_target, 10);
  EXPECT_DOUBLE_EQ(*r->updates_to_target, 10);
  EXPECT_DOUBLE_EQ(r->bytes_up, 6000);
  EXPECT_DOUBLE_EQ(r->bytes_down, 3000);
  EXPECT_DOUBLE_EQ(r->mean_staleness, (10 * 1 + 30 * 3) / 40.0);
  ASSERT_EQ(r->extra.count("consensus_distance"), 1u);
  EXPECT_DOUBLE_EQ(r->extra.at("consensus_distance"), 0.25);
  EXPECT_EQ(r->extra.count("robust_accuracy"), 0u);

  spec.mutable_target()->set_accuracy(0.9);
  auto never = FiguresOfRun(Table(), spec);
  ASSERT_TRUE(never.ok());
  EXPECT_FALSE(never->time_to_target.has_value());
  spec.mutable_target()->set_column("robust_accuracy");
  EXPECT_THAT(std::string(FiguresOfRun(Table(), spec).status().message()),
              HasSubstr("no column 'robust_accuracy'"));
}

RunFigures Run(double final_acc, std::optional<double> t) {
  RunFigures r;
  r.final_accuracy = final_acc;
  r.best_accuracy = final_acc + 0.01;
  r.time_to_target = t;
  r.updates_to_target = t ? std::optional<double>(*t * 2) : std::nullopt;
  r.bytes_up = 2e6;
  r.bytes_down = 1e6;
  return r;
}

SummaryInput Input() {
  SummaryInput in;
  in.spec.set_name("cmp");
  in.spec.add_seeds(1);
  in.spec.add_seeds(2);
  in.spec.set_final_evals(1);
  in.spec.mutable_target()->set_accuracy(0.75);
  in.base_scenario = "scenarios/b.textproto";
  ArmResults base{"base", "", "fedavg", {}, {}, {}};
  base.by_seed[1] = Run(0.80, 100);
  base.by_seed[2] = Run(0.70, std::nullopt);
  ArmResults other{"fast", "a note", "fedbuff", {"algorithm.fedbuff.buffer_size=5"}, {}, {}};
  other.by_seed[1] = Run(0.85, 60);
  other.by_seed[2] = Run(0.80, 80);
  ArmResults broken{"broken", "", "fedasync", {}, {}, {"seed 1: exited with status 1"}};
  in.arms = {base, other, broken};
  in.build_ids = {"abc123"};
  return in;
}

TEST(SummaryTest, CsvHasMeanStdAndCountPerFigure) {
  const std::string csv = SummaryCsv(Input());
  EXPECT_THAT(csv, HasSubstr("arm,algorithm,runs,failed,final_accuracy_mean,final_accuracy_std,"
                             "final_accuracy_n,best_accuracy_mean"));
  EXPECT_THAT(csv, HasSubstr(",time_to_target_mean,time_to_target_std,time_to_target_n,"));
  // The base arm reached the target on one seed of two.
  EXPECT_THAT(csv, HasSubstr("\nbase,fedavg,2,0,0.75,0.0707106781,2,"));
  EXPECT_THAT(csv, HasSubstr(",100,0,1,"));
  EXPECT_THAT(csv, HasSubstr("\nbroken,fedasync,0,1,,,0,"));
  EXPECT_THAT(csv, Not(HasSubstr("robust_accuracy")));
}

TEST(SummaryTest, MarkdownTableAndPairedDifferences) {
  const std::string md = SummaryMarkdown(Input());
  EXPECT_THAT(md, HasSubstr("| arm | rule | runs | final acc | best acc | virtual s to 0.75 | "
                            "updates to 0.75 | MB up | MB down | mean staleness |"));
  EXPECT_THAT(md, HasSubstr("| base | fedavg | 2 | 0.7500 ± 0.0707 | 0.7600 ± 0.0707 | "
                            "100.0 (1/2) | 200 (1/2) | 2.0 ± 0.0 | 1.0 ± 0.0 |"));
  // Paired: d = {0.05, 0.10}: mean 0.075, sd 0.0353553, half width
  // 12.7062 * 0.0353553 / sqrt(2) = 0.317655.
  EXPECT_THAT(md, HasSubstr("| fast | +0.0750 [-0.2427, +0.3927] (n=2) |"));
  // Time to target pairs only seeds where both reached it: seed 1, 60 - 100.
  EXPECT_THAT(md, HasSubstr("| -40.0 (n=1) |"));
  EXPECT_THAT(md, HasSubstr("| broken | — | — | — |"));
  EXPECT_THAT(md, HasSubstr("Student's t"));
  EXPECT_THAT(md, HasSubstr("- broken, seed 1: exited with status 1"));
  EXPECT_THAT(md, HasSubstr("| fast | fedbuff | `algorithm.fedbuff.buffer_size=5` | a note |"));
}

TEST(SummaryTest, DecidingByUpdatesPutsUpdatesFirst) {
  SummaryInput in = Input();
  in.spec.mutable_target()->set_decide_by(compare::Target::CLIENT_UPDATES);
  const std::string md = SummaryMarkdown(in);
  EXPECT_THAT(md, HasSubstr("| best acc | updates to 0.75 | virtual s to 0.75 |"));
  EXPECT_THAT(md, HasSubstr("| Δ updates to 0.75 |"));
  EXPECT_THAT(md, Not(HasSubstr("Δ virtual s")));
}

}  // namespace
}  // namespace fedsim
