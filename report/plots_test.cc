#include "report/plots.h"

#include <cmath>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::DoubleEq;
using ::testing::ElementsAre;
using ::testing::Pointwise;

MetricsTable Table(const std::string& csv) { return *ParseMetricsCsv(csv, "m.csv"); }

TEST(PlotsTest, BandOnCommonEvaluationTimes) {
  MetricsTable a = Table("virtual_time,acc\n0,0.1\n10,0.5\n20,0.7\n");
  MetricsTable b = Table("virtual_time,acc\n0,0.3\n10,0.4\n20,0.9\n");
  const Band band = BandOverRuns({&a, &b}, "virtual_time", "acc", 400);
  EXPECT_THAT(band.x, ElementsAre(0, 10, 20));
  EXPECT_THAT(band.mean, Pointwise(DoubleEq(), std::vector<double>{0.2, 0.45, 0.8}));
  EXPECT_THAT(band.lo, Pointwise(DoubleEq(), std::vector<double>{0.1, 0.4, 0.7}));
  EXPECT_THAT(band.hi, Pointwise(DoubleEq(), std::vector<double>{0.3, 0.5, 0.9}));
  // Thinning keeps the last point.
  const Band thin = BandOverRuns({&a, &b}, "virtual_time", "acc", 2);
  EXPECT_THAT(thin.x, ElementsAre(0, 20));
}

TEST(PlotsTest, BandOnDifferentTimesHoldsTheLastEvaluation) {
  // Run a is evaluated at 0, 4, 8; run b at 0, 5, 10: the grid covers
  // [0, 8] (both runs), 3 points, each run held at its last evaluation.
  MetricsTable a = Table("t,acc\n0,0.1\n4,0.5\n8,0.7\n");
  MetricsTable b = Table("t,acc\n0,0.3\n5,0.6\n10,0.9\n");
  const Band band = BandOverRuns({&a, &b}, "t", "acc", 400);
  EXPECT_THAT(band.x, ElementsAre(0, 4, 8));
  EXPECT_THAT(band.lo, Pointwise(DoubleEq(), std::vector<double>{0.1, 0.3, 0.6}));
  EXPECT_THAT(band.hi, Pointwise(DoubleEq(), std::vector<double>{0.3, 0.5, 0.7}));
  // Empty cells are skipped; a missing column gives no points.
  MetricsTable c = Table("t,acc,robust\n0,0.1,\n4,0.5,0.2\n");
  EXPECT_THAT(BandOverRuns({&c}, "t", "robust", 400).x, ElementsAre(4));
  EXPECT_TRUE(BandOverRuns({&c}, "t", "nope", 400).x.empty());
}

TEST(PlotsTest, StalenessShares) {
  EXPECT_THAT(StalenessShares({0, 0, 1, 7, 3}, 4),
              Pointwise(DoubleEq(), std::vector<double>{0.4, 0.2, 0, 0.4}));
  EXPECT_THAT(StalenessShares({}, 2), ElementsAre(0, 0));
}

ReportRun FakeRun(const std::string& arm, uint64_t seed, const std::string& extra_col) {
  ReportRun r;
  r.arm = arm;
  r.seed = seed;
  r.num_clients = 4;
  std::string csv =
      "virtual_time,version,updates_applied,test_loss,test_accuracy,bytes_down,bytes_up" +
      extra_col + "\n";
  for (int i = 0; i < 5; ++i) {
    csv += std::to_string(i) + "," + std::to_string(i) + "," + std::to_string(2 * i) + ",1," +
           std::to_string(0.1 * i + 0.01 * seed) + ",1000,2000" +
           (extra_col.empty() ? "" : ",0.5") + "\n";
  }
  r.metrics = Table(csv);
  return r;
}

RunEvents Events() {
  RunEvents e;
  e.tasks = {{1, 0, 0, 1, TaskSpan::Kind::kAccepted},
             {2, 1, 0, 2, TaskSpan::Kind::kRefused},
             {3, 2, 0.5, 1, TaskSpan::Kind::kLost},
             {4, 0, 1, 3, TaskSpan::Kind::kAccepted},
             {5, 3, 2, 4, TaskSpan::Kind::kInFlight}};
  e.staleness = {0, 1, 1};
  e.end_time = 4;
  e.max_client = 3;
  return e;
}

size_t Points(const nlohmann::ordered_json& series) { return series["data"].size(); }

TEST(PlotsTest, EveryPlotWithItsSeries) {
  ReportInput in;
  in.arms = {"a", "b"};
  in.runs = {FakeRun("a", 1, ""), FakeRun("a", 2, ""), FakeRun("b", 1, ",consensus_distance"),
             FakeRun("b", 2, ",consensus_distance")};
  std::vector<RunEvents> events(4, Events());
  PlotOptions o;
  o.heatmap_bins = 8;
  const auto plots = BuildPlots(in, events, 1, o);
  std::vector<std::string> ids;
  for (const auto& p : plots) ids.push_back(p["id"]);
  EXPECT_THAT(ids, ElementsAre("acc_time", "acc_updates", "loss_time", "consensus_time",
                               "staleness", "bytes_time", "timeline", "participation"));
  // Curves: min, max and mean per arm, one point per evaluation.
  const auto& acc = plots[0]["series"];
  ASSERT_EQ(acc.size(), 6u);
  for (const auto& s : acc) EXPECT_EQ(Points(s), 5u);
  EXPECT_EQ(acc[2]["role"], "mean");
  EXPECT_DOUBLE_EQ(acc[2]["data"][4][1].get<double>(), 0.4 + 0.015);
  EXPECT_DOUBLE_EQ(acc[0]["data"][4][1].get<double>(), 0.41);
  EXPECT_DOUBLE_EQ(plots[1]["series"][2]["data"][4][0].get<double>(), 8);  // updates axis
  // The loss (all positive) on a log scale, so a diverging arm cannot flatten
  // the others; accuracy stays linear.
  EXPECT_EQ(plots[2]["y_scale"], "log");
  EXPECT_EQ(plots[0]["y_scale"], "linear");
  // Only arm b has the consensus distance.
  ASSERT_EQ(plots[3]["series"].size(), 3u);
  EXPECT_EQ(plots[3]["series"][2]["label"], "b (mean of 2 seeds)");
  // Staleness: one series per arm over the 31 bins, pooled over 2 seeds.
  ASSERT_EQ(plots[4]["series"].size(), 2u);
  EXPECT_EQ(Points(plots[4]["series"][0]), 31u);
  EXPECT_NEAR(plots[4]["series"][0]["data"][1].get<double>(), 2.0 / 3, 1e-12);
  // Bytes: down and up per arm, in MB.
  ASSERT_EQ(plots[5]["series"].size(), 4u);
  EXPECT_DOUBLE_EQ(plots[5]["series"][1]["data"][0][1].get<double>(), 0.002);
  // Timeline: the four kinds of task of the detail run.
  const auto& tl = plots[6];
  EXPECT_THAT(tl["categories"], ElementsAre("client 0", "client 1", "client 2", "client 3"));
  ASSERT_EQ(tl["series"].size(), 4u);
  EXPECT_EQ(Points(tl["series"][0]), 2u);
  EXPECT_EQ(Points(tl["series"][1]), 1u);
  EXPECT_EQ(Points(tl["series"][2]), 1u);
  EXPECT_EQ(Points(tl["series"][3]), 1u);
  EXPECT_THAT(tl["series"][1]["data"][0], ElementsAre(1, 0, 2));
  // Heat map: every client x bin cell; the counts add up to the tasks.
  const auto& hm = plots[7];
  ASSERT_EQ(Points(hm["series"][0]), 4u * 8);
  int total = 0;
  for (const auto& cell : hm["series"][0]["data"]) total += cell[2].get<int>();
  EXPECT_EQ(total, 5);
  EXPECT_EQ(hm["max"], 1);
}

TEST(PlotsTest, TimelineAndHeatMapAreCapped) {
  ReportInput in;
  in.arms = {"a"};
  in.runs = {FakeRun("a", 1, "")};
  RunEvents e;
  for (uint32_t i = 0; i < 50; ++i) {
    e.tasks.push_back({i + 1, i % 10, double(i), double(i) + 1, TaskSpan::Kind::kAccepted});
  }
  e.end_time = 51;
  e.max_client = 9;
  PlotOptions o;
  o.timeline_clients = 3;
  o.timeline_tasks = 7;
  o.heatmap_clients = 2;
  const auto plots = BuildPlots(in, {e}, 0, o);
  const auto& tl = plots[5];
  ASSERT_EQ(tl["id"], "timeline");
  EXPECT_EQ(tl["categories"].size(), 3u);
  EXPECT_EQ(Points(tl["series"][0]), 7u);
  EXPECT_THAT(tl["title"].get<std::string>(),
              ::testing::HasSubstr("first 3 clients, first 7 of their 15 tasks"));
  EXPECT_EQ(plots[6]["categories"].size(), 2u);
}

TEST(PlotsTest, LossWithAZeroStaysLinear) {
  ReportInput in;
  in.arms = {"a"};
  in.runs = {FakeRun("a", 1, "")};
  in.runs[0].metrics = Table(
      "virtual_time,version,updates_applied,test_loss,test_accuracy,bytes_down,bytes_up\n"
      "0,0,0,2.3,0.1,0,0\n"
      "1,1,2,0,0.9,10,20\n");
  const auto plots = BuildPlots(in, {Events()}, 0);
  ASSERT_EQ(plots[2]["id"], "loss_time");
  EXPECT_EQ(plots[2]["y_scale"], "linear");  // log(0) has no place on the axis
}

}  // namespace
}  // namespace fedsim
