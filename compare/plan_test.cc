#include "compare/plan.h"

#include <filesystem>
#include <fstream>

#include "config/scenario_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kBase[] = R"(
dataset { synthetic { alpha: 1 beta: 1 } }
partition { natural {} }
model { softmax {} }
num_clients: 10
algorithm { fedavg { clients_per_round: 5 } }
local { steps: 2 batch_size: 5 lr: 0.01 }
stop { max_commits: 4 max_virtual_s: 100 }
eval { every_commits: 2 }
)";

class PlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) / ("plan_test_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "cmp");
    std::ofstream(dir_ / "base.textproto") << kBase;
  }
  void TearDown() override { fs::remove_all(dir_); }

  absl::StatusOr<ComparisonPlan> Plan(const std::string& text, PlanOptions options = {}) {
    auto file = ParseComparisonText(text, (dir_ / "cmp" / "c.textproto").string());
    if (!file.ok()) return file.status();
    if (options.out_dir.empty()) options.out_dir = (dir_ / "out").string();
    return PlanComparison(*file, options);
  }

  fs::path dir_;
};

TEST_F(PlanTest, EveryArmTimesEverySeedSeedMajor) {
  auto plan = Plan(R"(scenario: "../base.textproto"
    seeds: [3, 4]
    arms { name: "sync" }
    arms { name: "buff" set: ["algorithm.fedbuff.buffer_size=2", "algorithm.fedbuff.concurrency=5"] })");
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->runs.size(), 4u);
  EXPECT_EQ(plan->dir, (dir_ / "out" / "c").string());
  EXPECT_EQ(plan->runs[0].arm, "sync");
  EXPECT_EQ(plan->runs[0].seed, 3u);
  EXPECT_EQ(plan->runs[1].arm, "buff");
  EXPECT_EQ(plan->runs[1].seed, 3u);
  EXPECT_EQ(plan->runs[2].seed, 4u);
  EXPECT_EQ(plan->runs[1].algorithm, "fedbuff");
  EXPECT_EQ(plan->runs[0].algorithm, "fedavg");
  EXPECT_EQ(plan->runs[3].dir, (dir_ / "out" / "c" / "buff" / "seed-4").string());
  EXPECT_EQ(plan->runs[3].log_path, (dir_ / "out" / "c" / "logs" / "buff.seed-4.log").string());
  EXPECT_EQ(plan->runs[0].max_commits, 4u);
  EXPECT_DOUBLE_EQ(plan->runs[0].max_virtual_s, 100);
  // The planned hash is the hash of the scenario `fedsim run` resolves from
  // the same base and overrides.
  auto alone = LoadScenario(
      (dir_ / "base.textproto").string(),
      {"algorithm.fedbuff.buffer_size=2", "algorithm.fedbuff.concurrency=5", "seed=4"});
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(plan->runs[3].scenario_hash, ScenarioHash(*alone));
  std::set<std::string> hashes;
  for (const PlannedRun& r : plan->runs) hashes.insert(r.scenario_hash);
  EXPECT_EQ(hashes.size(), 4u);
}

TEST_F(PlanTest, OptionsReplaceSeedsNameAndAddOverrides) {
  PlanOptions o;
  o.seeds = {9};
  o.name = "small";
  o.overrides = {"stop.max_commits=2"};
  auto plan = Plan("scenario: \"../base.textproto\" arms { name: \"a\" }", o);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->runs.size(), 1u);
  EXPECT_EQ(plan->runs[0].max_commits, 2u);
  EXPECT_EQ(plan->runs[0].seed, 9u);
  EXPECT_EQ(plan->dir, (dir_ / "out" / "small").string());
  EXPECT_FALSE(
      Plan("scenario: \"../base.textproto\" arms { name: \"a\" }", PlanOptions{{}, {}, "a b", ""})
          .ok());
}

TEST_F(PlanTest, ArmErrorsNameTheArmAndItsLine) {
  auto plan = Plan(R"(scenario: "../base.textproto"
arms { name: "ok" }
arms { name: "typo" set: "algorithm.fedasyc.alpha=0.6" }
arms { name: "range" set: "local.lr=-1" })");
  ASSERT_FALSE(plan.ok());
  const std::string m(plan.status().message());
  EXPECT_THAT(m, HasSubstr("c.textproto:3:1: arm 'typo': --set algorithm.fedasyc.alpha=0.6: "
                           "no field 'fedasyc'"));
  EXPECT_THAT(m, HasSubstr("c.textproto:4:1: arm 'range': "));
  EXPECT_THAT(m, HasSubstr("local.lr (from --set): must be > 0"));
  auto missing = Plan("scenario: \"../nope.textproto\" arms { name: \"a\" }");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("c.textproto:1:1: scenario: "));
}

TEST_F(PlanTest, InspectRunTellsWhatIsThere) {
  auto plan = Plan("scenario: \"../base.textproto\" arms { name: \"a\" }");
  ASSERT_TRUE(plan.ok()) << plan.status();
  const PlannedRun& run = plan->runs[0];
  EXPECT_EQ(InspectRun(run).state, RunState::kMissing);
  fs::create_directories(run.dir);
  EXPECT_EQ(InspectRun(run).state, RunState::kUnfinished);
  auto manifest = [&](const std::string& hash, const std::string& stop) {
    std::ofstream(run.dir + "/manifest.json")
        << "{\"scenario_hash\": \"" << hash << "\", \"stop_reason\": \"" << stop << "\"}";
  };
  manifest(run.scenario_hash, "max_commits");
  EXPECT_EQ(InspectRun(run).state, RunState::kFinished);
  manifest(run.scenario_hash, "interrupted");
  EXPECT_EQ(InspectRun(run).state, RunState::kUnfinished);
  manifest(std::string(64, '0'), "max_commits");
  const RunInspection stale = InspectRun(run);
  EXPECT_EQ(stale.state, RunState::kStale);
  EXPECT_THAT(stale.why, HasSubstr("000000000000 is not the planned"));
  ASSERT_TRUE(ClearRun(run).ok());
  EXPECT_FALSE(fs::exists(run.dir));
  EXPECT_TRUE(ClearRun(run).ok());
}

TEST_F(PlanTest, CommandLinesAndPlanJson) {
  auto plan = Plan(
      R"(scenario: "../base.textproto" arms { name: "a" set: "events[0]={at_s: 1 join: true}" })");
  ASSERT_TRUE(plan.ok()) << plan.status();
  const PlannedRun& run = plan->runs[0];
  EXPECT_THAT(RunArguments(*plan, run, 2, 3),
              ::testing::ElementsAre("run", (dir_ / "base.textproto").string(), "--inprocess",
                                     "--run_dir=" + run.dir, "--slots=2", "--eval_threads=3",
                                     "--set=events[0]={at_s: 1 join: true}", "--set=seed=1"));
  EXPECT_THAT(RunCommandLine(*plan, run),
              HasSubstr("--inprocess --run_dir=" + run.dir +
                        " '--set=events[0]={at_s: 1 join: true}' --set=seed=1"));
  const std::string json = PlanJson(*plan);
  EXPECT_THAT(json, HasSubstr("\"dir\": \"a/seed-1\""));
  EXPECT_THAT(json, HasSubstr("\"scenario_hash\": \"" + run.scenario_hash + "\""));
}

// Every comparison shipped in scenarios/compare/ resolves: each arm is a
// valid scenario for each seed.
TEST(ShippedComparisonsTest, EveryArmResolves) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator("scenarios/compare")) {
    if (entry.path().extension() != ".textproto") continue;
    ++count;
    auto file = LoadComparison(entry.path().string());
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_GE(file->spec.arms_size(), 2) << entry.path();
    auto plan = PlanComparison(*file, {});
    ASSERT_TRUE(plan.ok()) << entry.path() << ": " << plan.status();
    EXPECT_EQ(plan->runs.size(),
              static_cast<size_t>(file->spec.arms_size() * file->spec.seeds_size()));
  }
  EXPECT_EQ(count, 6);  // async, fraboni, three FedAU patterns, dfedsam
}

}  // namespace
}  // namespace fedsim
