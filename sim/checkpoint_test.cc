#include "sim/checkpoint.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "config/scenario_file.h"
#include "gtest/gtest.h"
#include "sim/run_observer.h"
#include "sim/runner.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;

std::string FreshDir(const std::string& tag) {
  std::string dir = absl::StrCat(::testing::TempDir(), "/checkpoint_test_", getpid(), "_", tag);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

ckpt::EngineState StateAt(uint64_t version) {
  ckpt::EngineState s;
  s.set_version(version);
  s.set_now(1.5 * static_cast<double>(version));
  s.set_num_clients(1);
  s.add_busy_clients(0);
  return s;
}

TEST(CheckpointFileTest, WritesReadsAndKeepsThePreviousOne) {
  const std::string dir = FreshDir("files");
  ASSERT_TRUE(WriteCheckpoint(dir, StateAt(3)).ok());
  ASSERT_TRUE(WriteCheckpoint(dir, StateAt(7)).ok());
  EXPECT_FALSE(fs::exists(dir + "/checkpoint.bin.tmp"));
  absl::StatusOr<LoadedCheckpoint> latest = LoadLatestCheckpoint(dir);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->state.version(), 7u);
  EXPECT_TRUE(latest->warning.empty());
  absl::StatusOr<ckpt::EngineState> prev = ReadCheckpointFile(dir + "/" + kPreviousCheckpointFile);
  ASSERT_TRUE(prev.ok()) << prev.status();
  EXPECT_EQ(prev->version(), 3u);
}

TEST(CheckpointFileTest, DamagedNewestFallsBackToThePreviousWithAWarning) {
  const std::string dir = FreshDir("damaged");
  ASSERT_TRUE(WriteCheckpoint(dir, StateAt(3)).ok());
  ASSERT_TRUE(WriteCheckpoint(dir, StateAt(7)).ok());
  const std::string path = dir + "/" + kCheckpointFile;
  std::string bytes = ReadFile(path);
  bytes[bytes.size() / 2] ^= 0x40;  // one flipped bit in the payload
  WriteFile(path, bytes);
  absl::StatusOr<ckpt::EngineState> bad = ReadCheckpointFile(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(bad.status().message().find(path), std::string::npos) << bad.status();

  absl::StatusOr<LoadedCheckpoint> latest = LoadLatestCheckpoint(dir);
  ASSERT_TRUE(latest.ok()) << latest.status();
  EXPECT_EQ(latest->state.version(), 3u);
  EXPECT_NE(latest->warning.find(kCheckpointFile), std::string::npos) << latest->warning;

  // A truncated previous file too: both are named in the error.
  const std::string prev = dir + "/" + kPreviousCheckpointFile;
  WriteFile(prev, ReadFile(prev).substr(0, 20));
  latest = LoadLatestCheckpoint(dir);
  ASSERT_FALSE(latest.ok());
  EXPECT_EQ(latest.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(latest.status().message().find(kPreviousCheckpointFile), std::string::npos);
}

TEST(CheckpointFileTest, AFolderWithoutCheckpointIsNotFound) {
  absl::StatusOr<LoadedCheckpoint> latest = LoadLatestCheckpoint(FreshDir("none"));
  ASSERT_FALSE(latest.ok());
  EXPECT_EQ(latest.status().code(), absl::StatusCode::kNotFound);
}

// Copies the run folder as it is on disk when commit `at` happens: what a
// kill -9 at that moment would leave (the writers' unflushed buffers are
// lost, exactly as in a crash).
class CrashCopy : public RunObserver {
 public:
  CrashCopy(std::string from, std::string to, Version at)
      : from_(std::move(from)), to_(std::move(to)), at_(at) {}
  void OnCommit(VirtualTime, Version v, const CommitResult&) override {
    if (v != at_) return;
    fs::remove_all(to_);
    fs::copy(from_, to_, fs::copy_options::recursive);
    copied_ = true;
  }
  bool copied() const { return copied_; }

 private:
  std::string from_, to_;
  Version at_;
  bool copied_ = false;
};

// Sets the interrupt flag at commit `at` (Ctrl-C there).
class InterruptAt : public RunObserver {
 public:
  InterruptAt(std::atomic<bool>* flag, Version at) : flag_(flag), at_(at) {}
  void OnCommit(VirtualTime, Version v, const CommitResult&) override {
    if (v == at_) flag_->store(true);
  }

 private:
  std::atomic<bool>* flag_;
  Version at_;
};

struct RuleCase {
  const char* name;
  const char* algorithm;
};

constexpr char kBody[] =
    "dataset{synthetic{examples_per_client:40}} partition{natural{}} model{softmax{}} "
    "num_clients:8 devices{seconds_per_example{lognormal{mu:-5 sigma:1}}} "
    "stop{max_commits:12} eval{every_commits:2} ";

// What `fedsim run` and `fedsim server` start from: a scenario file with
// its overrides and folder, or a run folder's own scenario and recorded folder.
TEST(LoadScenarioToRunTest, ANewRunReadsTheFileAResumedOneItsRunFolder) {
  const std::string dir = FreshDir("to_run");
  fs::create_directories(dir + "/scenarios");
  const std::string path = dir + "/scenarios/s.textproto";
  const std::string text =
      absl::StrCat("name:\"to_run\" ", kBody, "algorithm{fedavg{clients_per_round:4}}");
  WriteFile(path, text);
  absl::StatusOr<RunScenario> fresh = LoadScenarioToRun(path, {"stop.max_commits=5"}, "");
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(fresh->scenario.name(), "to_run");
  EXPECT_EQ(fresh->scenario.stop().max_commits(), 5u);
  EXPECT_EQ(fresh->scenario_dir, dir + "/scenarios");

  // Resuming ignores the path and the overrides.
  const std::string run_dir = dir + "/run";
  fs::create_directories(run_dir);
  WriteFile(run_dir + "/scenario.textproto", "# scenario_dir: /data/here\n" + text);
  absl::StatusOr<RunScenario> resumed =
      LoadScenarioToRun(dir + "/missing.textproto", {"stop.max_commits=99"}, run_dir);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->scenario.stop().max_commits(), 12u);
  EXPECT_EQ(resumed->scenario_dir, "/data/here");

  EXPECT_EQ(LoadScenarioToRun(dir + "/missing.textproto", {}, "").status().code(),
            absl::StatusCode::kNotFound);
  const absl::Status no_run = LoadScenarioToRun(path, {}, dir + "/scenarios").status();
  EXPECT_EQ(no_run.code(), absl::StatusCode::kNotFound);
  EXPECT_NE(no_run.message().find("a run written by fedsim run"), std::string::npos) << no_run;
}

class ResumeTest : public ::testing::TestWithParam<RuleCase> {
 protected:
  absl::StatusOr<std::unique_ptr<PreparedRun>> Prepare() {
    FEDSIM_ASSIGN_OR_RETURN(config::Scenario s,
                            ParseScenarioText(absl::StrCat("name:\"", GetParam().name, "\" ", kBody,
                                                           GetParam().algorithm),
                                              "resume_t.textproto", {}));
    return PrepareRun(s, ".");
  }

  // A run from scratch into `run_dir`, checkpointing every 3 commits.
  RunOutcome RunFresh(const std::string& run_dir, std::vector<RunObserver*> observers,
                      const std::atomic<bool>* interrupt = nullptr) {
    absl::StatusOr<std::unique_ptr<PreparedRun>> run = Prepare();
    EXPECT_TRUE(run.ok()) << run.status();
    if (!run.ok()) return {};
    RunOptions options;
    options.run_dir = run_dir;
    options.progress = nullptr;
    options.checkpoint_every_commits = 3;
    options.observers = std::move(observers);
    options.interrupt = interrupt;
    absl::StatusOr<RunOutcome> outcome = RunInProcess(**run, 2, options);
    EXPECT_TRUE(outcome.ok()) << outcome.status();
    return outcome.ok() ? *outcome : RunOutcome{};
  }

  // Resumes `run_dir` from its own scenario.textproto.
  absl::StatusOr<RunOutcome> Resume(const std::string& run_dir) {
    FEDSIM_ASSIGN_OR_RETURN(RunScenario rs, LoadRunScenario(run_dir));
    FEDSIM_ASSIGN_OR_RETURN(std::unique_ptr<PreparedRun> run,
                            PrepareRun(rs.scenario, rs.scenario_dir));
    RunOptions options;
    options.resume_dir = run_dir;
    options.progress = nullptr;
    options.checkpoint_every_commits = 3;
    return RunInProcess(*run, 2, options);
  }

  void ExpectSameOutputs(const std::string& a, const std::string& b) {
    for (const char* f : {"metrics.csv", "events.jsonl"}) {
      const std::string want = ReadFile(a + "/" + f);
      ASSERT_FALSE(want.empty()) << f;
      EXPECT_EQ(want, ReadFile(b + "/" + f)) << f;
    }
    EXPECT_EQ(ReadFile(a + "/final_model.bin"), ReadFile(b + "/final_model.bin"));
  }
};

TEST_P(ResumeTest, KillAtAnyCommitThenResumeGivesTheUndisturbedRun) {
  const std::string root = FreshDir(GetParam().name);
  const RunOutcome reference = RunFresh(root + "/ref", {});
  ASSERT_EQ(reference.summary.final_version, 12u);
  // Crash points after the first checkpoint (commit 3; before it there is
  // nothing to resume): just after one, at the commit that would write the
  // next (so the older one is used), and near the end.
  for (Version at : {4u, 6u, 11u}) {
    SCOPED_TRACE(absl::StrCat("killed at commit ", at));
    const std::string crashed = absl::StrCat(root, "/crash", at);
    CrashCopy copy(root + "/run", crashed, at);
    RunFresh(root + "/run", {&copy});
    ASSERT_TRUE(copy.copied());
    fs::remove_all(root + "/run");
    absl::StatusOr<RunOutcome> resumed = Resume(crashed);
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    EXPECT_EQ(resumed->summary.final_model_hash, reference.summary.final_model_hash);
    EXPECT_EQ(resumed->summary.updates_applied, reference.summary.updates_applied);
    ExpectSameOutputs(root + "/ref", crashed);
  }
}

TEST_P(ResumeTest, InterruptedRunResumesToTheUndisturbedRun) {
  const std::string root = FreshDir(absl::StrCat(GetParam().name, "_int"));
  const RunOutcome reference = RunFresh(root + "/ref", {});
  std::atomic<bool> interrupt{false};
  InterruptAt at(&interrupt, 7);
  const RunOutcome stopped = RunFresh(root + "/run", {&at}, &interrupt);
  EXPECT_EQ(stopped.summary.stop_reason, "interrupted");
  EXPECT_LT(stopped.summary.final_version, 12u);
  absl::StatusOr<RunOutcome> resumed = Resume(root + "/run");
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_EQ(resumed->summary.final_model_hash, reference.summary.final_model_hash);
  ExpectSameOutputs(root + "/ref", root + "/run");

  // The finished run cannot be resumed again.
  absl::StatusOr<RunOutcome> again = Resume(root + "/run");
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("already finished"), std::string::npos) << again.status();
}

INSTANTIATE_TEST_SUITE_P(
    Rules, ResumeTest,
    ::testing::Values(
        RuleCase{"fedavg", "algorithm{fedavg{clients_per_round:3}}"},
        RuleCase{"fedavg_deadline", "algorithm{fedavg{clients_per_round:3 deadline_s:0.3}}"},
        RuleCase{"fedbuff", "algorithm{fedbuff{buffer_size:2 concurrency:4}}"},
        RuleCase{"fedasync", "algorithm{fedasync{alpha:0.6 concurrency:3}}"},
        RuleCase{"fedau",
                 "algorithm{fedau{}} participation{bernoulli{} "
                 "probability{distribution{constant:0.6}}}"},
        RuleCase{"decentralized",
                 "algorithm{decentralized{variant:DFEDSAM gossip_steps:2 topology{ring{}}}}"}),
    [](const ::testing::TestParamInfo<RuleCase>& info) { return std::string(info.param.name); });

TEST(ResumeCheckTest, ACheckpointOfAnotherScenarioIsRefused) {
  const std::string dir = FreshDir("other");
  absl::StatusOr<config::Scenario> s = ParseScenarioText(
      absl::StrCat("name:\"other\" ", kBody, "algorithm{fedbuff{buffer_size:2 concurrency:4}}"),
      "other.textproto", {});
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<std::unique_ptr<PreparedRun>> run = PrepareRun(*s, ".");
  ASSERT_TRUE(run.ok()) << run.status();
  RunOptions options;
  options.run_dir = dir + "/run";
  options.progress = nullptr;
  ASSERT_TRUE(RunInProcess(**run, 1, options).ok());

  s->set_seed(s->seed() + 1);
  run = PrepareRun(*s, ".");
  ASSERT_TRUE(run.ok()) << run.status();
  RunOptions resume;
  resume.resume_dir = dir + "/run";
  resume.progress = nullptr;
  absl::StatusOr<RunOutcome> r = RunInProcess(**run, 1, resume);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("another scenario"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace fedsim
