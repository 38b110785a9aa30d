// `fedsim compare` end to end: the real binary runs a small comparison of two
// rules x two seeds on generated data (tests/compare_test_util.h).
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/compare_test_util.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

class CompareE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeComparisonFolder(::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  Ran Compare(std::vector<std::string> extra = {}, const std::string& file = "small.textproto") {
    std::vector<std::string> argv = {FEDSIM_BINARY, "compare", (dir_ / file).string(),
                                     "--out_dir=" + (dir_ / "runs").string(), "--parallel=2"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunProgram(argv, dir_ / "compare.out");
  }
  fs::path Run(const std::string& arm, int seed) const {
    return dir_ / "runs" / "small" / arm / ("seed-" + std::to_string(seed));
  }
  fs::path dir_;
};

// The overrides of each arm, written here again rather than read from the
// comparison's own plan, so the test checks the plan too.
const std::map<std::string, std::vector<std::string>>& ArmSets() {
  static const auto* m = new std::map<std::string, std::vector<std::string>>{
      {"fedavg", {}},
      {"fedbuff",
       {"--set=algorithm.fedbuff.buffer_size=3", "--set=algorithm.fedbuff.concurrency=6"}}};
  return *m;
}

std::string Field(const fs::path& run, const std::string& key) {
  const auto j = nlohmann::json::parse(ReadText(run / "manifest.json"));
  return j.at(key).is_string() ? j.at(key).get<std::string>() : j.at(key).dump();
}

TEST_F(CompareE2ETest, ParallelRunsAreBitIdenticalToRunningEachAlone) {
  const Ran r = Compare();
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("2 arms x 2 seeds = 4 runs (0 reused, 4 to run), 2 at a time"));
  for (const auto& [arm, sets] : ArmSets()) {
    for (int seed : {1, 2}) {
      const fs::path alone = dir_ / "alone" / (arm + std::to_string(seed));
      std::vector<std::string> argv = {FEDSIM_BINARY,
                                       "run",
                                       (dir_ / "base.textproto").string(),
                                       "--inprocess",
                                       "--slots=3",
                                       "--run_dir=" + alone.string(),
                                       "--set=seed=" + std::to_string(seed)};
      argv.insert(argv.end(), sets.begin(), sets.end());
      const Ran a = RunProgram(argv, dir_ / "alone.out");
      ASSERT_EQ(a.code, 0) << a.err;
      const fs::path in_cmp = Run(arm, seed);
      EXPECT_EQ(ReadText(alone / "metrics.csv"), ReadText(in_cmp / "metrics.csv")) << arm << seed;
      EXPECT_EQ(ReadText(alone / "events.jsonl"), ReadText(in_cmp / "events.jsonl")) << arm << seed;
      EXPECT_EQ(Field(alone, "final_model_hash"), Field(in_cmp, "final_model_hash"));
      EXPECT_EQ(Field(alone, "scenario_hash"), Field(in_cmp, "scenario_hash"));
      EXPECT_EQ(Field(in_cmp, "seed"), std::to_string(seed));
    }
  }
  // Different rules and seeds do give different runs (the checks above could
  // not pass by comparing a run with itself).
  EXPECT_NE(Field(Run("fedavg", 1), "final_model_hash"),
            Field(Run("fedbuff", 1), "final_model_hash"));
  EXPECT_NE(Field(Run("fedavg", 1), "final_model_hash"),
            Field(Run("fedavg", 2), "final_model_hash"));
  // The summary: a row per arm with both seeds, and the paired differences.
  const std::string md = ReadText(dir_ / "runs" / "small" / "summary.md");
  EXPECT_THAT(md, HasSubstr("| fedavg | fedavg | 2 |"));
  EXPECT_THAT(md, HasSubstr("| fedbuff | fedbuff | 2 |"));
  EXPECT_THAT(md, HasSubstr("## Paired differences against `fedavg`"));
  EXPECT_THAT(r.out, HasSubstr("# Comparison `small`"));
  const std::string csv = ReadText(dir_ / "runs" / "small" / "summary.csv");
  EXPECT_THAT(csv, HasSubstr("\nfedbuff,fedbuff,2,0,"));
  EXPECT_TRUE(fs::exists(dir_ / "runs" / "small" / "logs" / "fedbuff.seed-2.log"));
}

// Common random numbers: for one seed both rules see the same data sizes and
// device speeds (the first task of a client takes the same virtual time
// under either rule: one epoch over its data at its speed) and the same
// participation draws (the same availability changes).
TEST_F(CompareE2ETest, ArmsOfOneSeedShareDataFleetAndParticipation) {
  const Ran r = Compare();
  ASSERT_EQ(r.code, 0) << r.err;
  struct Seen {
    std::map<int, double> first_duration;  // client -> its first task's duration
    std::vector<std::string> avail;        // "t client on" before t = 29
  };
  auto read = [](const fs::path& run) {
    Seen s;
    std::istringstream in(ReadText(run / "events.jsonl"));
    std::string line;
    while (std::getline(in, line)) {
      const auto e = nlohmann::json::parse(line);
      if (e["ev"] == "dispatch")
        s.first_duration.emplace(e["client"].get<int>(), e["dur"].get<double>());
      if (e["ev"] == "avail" && e["t"].get<double>() < 29) s.avail.push_back(e.dump());
    }
    return s;
  };
  for (int seed : {1, 2}) {
    const Seen a = read(Run("fedavg", seed)), b = read(Run("fedbuff", seed));
    int common = 0;
    for (const auto& [client, dur] : a.first_duration) {
      auto it = b.first_duration.find(client);
      if (it == b.first_duration.end()) continue;
      ++common;
      EXPECT_EQ(dur, it->second) << "seed " << seed << " client " << client;
    }
    EXPECT_GE(common, 8) << "seed " << seed;
    EXPECT_GT(a.avail.size(), 20u);
    EXPECT_EQ(a.avail, b.avail) << "seed " << seed;
  }
  // Another seed is another fleet and another participation.
  const Seen s1 = read(Run("fedavg", 1)), s2 = read(Run("fedavg", 2));
  EXPECT_NE(s1.avail, s2.avail);
  int differ = 0;
  for (const auto& [client, dur] : s1.first_duration) {
    auto it = s2.first_duration.find(client);
    differ += it != s2.first_duration.end() && it->second != dur;
  }
  EXPECT_GT(differ, 0);
}

TEST_F(CompareE2ETest, RerunReusesFinishedRunsAndRedoesWhatChanged) {
  ASSERT_EQ(Compare().code, 0);
  auto stamps = [&] {
    std::map<std::string, fs::file_time_type> m;
    for (const std::string arm : {"fedavg", "fedbuff"}) {
      for (int seed : {1, 2}) {
        m[arm + std::to_string(seed)] = fs::last_write_time(Run(arm, seed) / "manifest.json");
      }
    }
    return m;
  };
  const auto first = stamps();
  Ran again = Compare();
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_THAT(again.err, HasSubstr("(4 reused, 0 to run)"));
  EXPECT_EQ(stamps(), first);
  EXPECT_TRUE(fs::exists(dir_ / "runs" / "small" / "summary.md"));

  // An interrupted run (no manifest) is redone; the others stay.
  fs::remove(Run("fedbuff", 2) / "manifest.json");
  again = Compare();
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_THAT(again.err, HasSubstr("(3 reused, 1 to run)"));
  EXPECT_THAT(again.err, HasSubstr("fedbuff seed 2: redo (no manifest.json"));
  auto now = stamps();
  EXPECT_EQ(now["fedavg1"], first.at("fedavg1"));
  EXPECT_TRUE(fs::exists(Run("fedbuff", 2) / "manifest.json"));

  // --force redoes everything; another --set changes every scenario hash.
  again = Compare({"--force"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_THAT(again.err, HasSubstr("(0 reused, 4 to run)"));
  again = Compare({"--set=stop.max_virtual_s=12"});
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_THAT(again.err, HasSubstr("(0 reused, 4 to run)"));
  EXPECT_THAT(again.err, HasSubstr("is not the planned"));
  EXPECT_THAT(ReadText(Run("fedavg", 1) / "metrics.csv"), Not(HasSubstr("\n15,")));
}

TEST_F(CompareE2ETest, AFailedArmIsReportedAndTheOthersGoOn) {
  std::ofstream(dir_ / "broken.textproto")
      << "name: \"small\"\n"
      << kSmallComparison
      << "arms { name: \"broken\" set: \"devices.profiles_csv=/nonexistent/p.csv\" }\n";
  const Ran r = Compare({}, "broken.textproto");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("FAILED broken seed 1: exited with status 1"));
  EXPECT_THAT(r.err, HasSubstr("2 of 6 runs failed"));
  const std::string md = ReadText(dir_ / "runs" / "small" / "summary.md");
  EXPECT_THAT(md, HasSubstr("| fedbuff | fedbuff | 2 |"));
  EXPECT_THAT(md, HasSubstr("| broken | fedavg | 0 |"));
  EXPECT_THAT(md, HasSubstr("- broken, seed 2: exited with status 1: fedsim run: "
                            "devices.profiles_csv: cannot read /nonexistent/p.csv"));
}

TEST_F(CompareE2ETest, MistakesAreReportedBeforeAnythingRuns) {
  std::ofstream(dir_ / "typo.textproto")
      << "scenario: \"base.textproto\"\narms { name: \"a\" }\n"
         "arms { name: \"b\" set: \"algorithm.fedbuf.buffer_size=3\" }\n";
  const Ran r = Compare({}, "typo.textproto");
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("typo.textproto:3:1: arm 'b': --set algorithm.fedbuf.buffer_size=3: "
                               "no field 'fedbuf'"));
  EXPECT_FALSE(fs::exists(dir_ / "runs"));
  const Ran usage = Compare({"--set=seed=4"});
  EXPECT_EQ(usage.code, 2);
  EXPECT_THAT(usage.err, HasSubstr("use --seeds"));
}

}  // namespace
}  // namespace fedsim
