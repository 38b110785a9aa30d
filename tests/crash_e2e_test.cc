// Crash safety end to end: the real `fedsim` binary with real worker
// processes. A server killed with SIGKILL mid-run and started again with
// --resume ends with the undisturbed run's metrics, events and model, its
// workers riding out the restart; Ctrl-C on `fedsim run` stops every child
// and leaves a resumable run.
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/e2e_util.h"
#include "tools/subprocess.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using e2e::ManifestField;
using e2e::ReadFile;
using e2e::RunFedsim;

class CrashE2ETest : public e2e::E2EFixture {
 protected:
  // A small quickstart: 8 clients, 4 per round, 6 rounds.
  const std::vector<std::string> sets_ = {
      "--set=num_clients=8", "--set=algorithm.fedavg.clients_per_round=4",
      "--set=dataset.fashion_mnist.train_limit=8000", "--set=stop.max_commits=6"};

  // A small decentralized run (client models on the workers, peer to peer):
  // 8 clients on a ring, about 6 of them training each round, 6 rounds.
  const std::vector<std::string> decentralized_sets_ = {
      "--set=num_clients=8",
      "--set=dataset.fashion_mnist.train_limit=4000",
      "--set=dataset.fashion_mnist.test_limit=1000",
      "--set=stop.max_commits=6",
      "--set=eval.every_commits=1",
      "--set=eval.client_sample=3",
      "--set=algorithm.decentralized.topology={ring{}}",
      "--set=participation={bernoulli{} probability{distribution{constant:0.75}}}"};

  void RunReference(const std::string& scenario = "scenarios/quickstart.textproto",
                    const std::vector<std::string>* sets = nullptr) {
    e2e::RunInProcess(scenario, sets != nullptr ? *sets : sets_, tmp_ / "ref");
  }

  // Ctrl-C on `fedsim run SCENARIO --workers=2` after its second commit (and
  // then `pushed` more task results, so mid-round), then --resume: every
  // child stops, and the resumed run is the undisturbed one.
  void ExpectCtrlCAndResumeLeaveTheUndisturbedRun(const std::string& scenario,
                                                  const std::vector<std::string>& sets,
                                                  int pushed = 0);

  void ExpectSameAsReference(const fs::path& dir) {
    const std::string metrics = ReadFile(tmp_ / "ref" / "metrics.csv");
    ASSERT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 8);  // header + versions 0..6
    EXPECT_EQ(metrics, ReadFile(dir / "metrics.csv"));
    EXPECT_EQ(ReadFile(tmp_ / "ref" / "events.jsonl"), ReadFile(dir / "events.jsonl"));
    const std::string hash = ManifestField(tmp_ / "ref", "final_model_hash");
    EXPECT_EQ(hash.size(), 64u);
    EXPECT_EQ(hash, ManifestField(dir, "final_model_hash"));
    EXPECT_EQ(ReadFile(tmp_ / "ref" / "final_model.bin"), ReadFile(dir / "final_model.bin"));
  }
};

// Commit lines of the progress output: "[NAME] commit K/N ...".
int CommitOf(const std::string& line, const std::string& name) {
  static const std::regex re(R"(^\[([a-z0-9]+)\] commit ([0-9]+)/)");
  std::smatch m;
  if (!std::regex_search(line, m, re) || m[1] != name) return -1;
  return std::stoi(m[2]);
}

TEST_F(CrashE2ETest, ServerKilledMidRunAndResumedGivesTheUndisturbedRun) {
  ASSERT_NO_FATAL_FAILURE(RunReference());
  std::mutex mu;
  std::string address;
  pid_t server_pid = -1;
  bool redispatched_logged = false;
  absl::Notification listening, killed;
  SubprocessSet procs([&](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    if (const std::string a = e2e::ListenAddress(line);
        !a.empty() && !listening.HasBeenNotified()) {
      address = a;
      listening.Notify();
    } else if (CommitOf(line, "server") >= 3 && !killed.HasBeenNotified()) {
      // Checkpoints come every 2 commits: the one of commit 2 is on disk.
      kill(server_pid, SIGKILL);
      killed.Notify();
    } else if (line.find("[again] resuming") == 0 &&
               line.find("dispatched again: ") != std::string::npos) {
      redispatched_logged = line.find("dispatched again: none") == std::string::npos;
    }
  });
  const fs::path out = tmp_ / "srv";
  std::vector<std::string> server = {FEDSIM_BINARY,
                                     "server",
                                     "--scenario=scenarios/quickstart.textproto",
                                     "--listen=127.0.0.1:0",
                                     "--checkpoint_every=2",
                                     "--server_out=" + out.string()};
  server.insert(server.end(), sets_.begin(), sets_.end());
  {
    std::lock_guard<std::mutex> lock(mu);
    auto s = procs.Start("server", server);
    ASSERT_TRUE(s.ok()) << s.status();
    server_pid = procs.children()[*s].pid;
  }
  ASSERT_TRUE(listening.WaitForNotificationWithTimeout(absl::Seconds(60)))
      << "the server never printed its address";
  for (const char* w : {"w1", "w2"}) {
    ASSERT_TRUE(procs
                    .Start(w, {FEDSIM_BINARY, "client", "--server=" + address, "--slots=1",
                               std::string("--name=") + w})
                    .ok());
  }
  ASSERT_TRUE(killed.WaitForNotificationWithTimeout(absl::Seconds(300)))
      << "the server never reached commit 3";
  while (procs.children()[0].exited == false) {
    procs.Poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(procs.children()[0].exit_code, 128 + SIGKILL);
  const fs::path run_dir = out / "quickstart";
  ASSERT_TRUE(fs::exists(run_dir / "checkpoint.bin"));
  EXPECT_FALSE(fs::exists(run_dir / "manifest.json"));  // it never finished

  // The same address: the workers are still retrying it.
  ASSERT_TRUE(procs
                  .Start("again", {FEDSIM_BINARY, "server", "--resume=" + run_dir.string(),
                                   "--listen=" + address, "--checkpoint_every=2"})
                  .ok());
  procs.WaitAll(300);
  const auto children = procs.children();
  ASSERT_EQ(children.size(), 4u);
  EXPECT_EQ(children[1].exit_code, 0)
      << "w1 did not outlive the restart: " << procs.DescribeFailures();
  EXPECT_EQ(children[2].exit_code, 0)
      << "w2 did not outlive the restart: " << procs.DescribeFailures();
  EXPECT_EQ(children[3].exit_code, 0) << procs.DescribeFailures();
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_TRUE(redispatched_logged) << "the resumed server did not name the tasks it re-ran";
  }
  ExpectSameAsReference(run_dir);
}

// The pids of the processes whose parent is `parent`.
std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    std::getline(stat, line);
    // pid (comm) state ppid ...: comm may hold spaces, so parse after ')'.
    const size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

// True while `pid` exists and is not a zombie.
bool Alive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  const size_t close = line.rfind(')');
  return close != std::string::npos && line.size() > close + 2 && line[close + 2] != 'Z';
}

void CrashE2ETest::ExpectCtrlCAndResumeLeaveTheUndisturbedRun(const std::string& scenario,
                                                              const std::vector<std::string>& sets,
                                                              int pushed) {
  ASSERT_NO_FATAL_FAILURE(RunReference(scenario, &sets));
  std::mutex mu;
  std::vector<pid_t> workers;
  pid_t run_pid = -1;
  absl::Notification reached;
  bool second_commit = false;
  int pushed_since = 0;
  SubprocessSet procs([&](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    second_commit |= CommitOf(line, "run") >= 2;
    if (second_commit && line.find("): pushed") != std::string::npos) ++pushed_since;
    if (second_commit && pushed_since >= pushed && !reached.HasBeenNotified()) {
      workers = ChildrenOf(run_pid);  // its worker processes, alive now
      kill(run_pid, SIGINT);
      reached.Notify();
    }
  });
  std::vector<std::string> run = {FEDSIM_BINARY, "run",
                                  scenario,      "--workers=2",
                                  "--slots=1",   "--run_dir=" + (tmp_ / "run").string()};
  run.insert(run.end(), sets.begin(), sets.end());
  if (pushed > 0) run.push_back("--verbose");  // the workers' task lines
  {
    std::lock_guard<std::mutex> lock(mu);
    auto r = procs.Start("run", run);
    ASSERT_TRUE(r.ok()) << r.status();
    run_pid = procs.children()[*r].pid;
  }
  ASSERT_TRUE(reached.WaitForNotificationWithTimeout(absl::Seconds(300)));
  const auto start = std::chrono::steady_clock::now();
  procs.WaitAll(60);
  const double stop_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(procs.children()[0].exit_code, 130) << procs.DescribeFailures();
  EXPECT_FALSE(procs.children()[0].killed_by_wait);
  EXPECT_LT(stop_s, 20.0);
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(workers.size(), 2u);
    for (pid_t w : workers) EXPECT_FALSE(Alive(w)) << "worker " << w << " outlived fedsim run";
  }
  ASSERT_TRUE(fs::exists(tmp_ / "run" / "checkpoint.bin"));
  if (pushed > 0) {
    // Stopped mid-round: the checkpoint holds trained models of that round.
    EXPECT_NE(ReadFile(tmp_ / "run" / "checkpoint.bin").find("decentralized.y."),
              std::string::npos);
  }

  std::string err;
  ASSERT_EQ(
      RunFedsim({"run", "--resume=" + (tmp_ / "run").string(), "--workers=2", "--slots=1"}, &err),
      0)
      << err;
  ExpectSameAsReference(tmp_ / "run");
  // Finished: a second resume is refused, saying so.
  err.clear();
  EXPECT_EQ(RunFedsim({"run", "--resume=" + (tmp_ / "run").string(), "--inprocess"}, &err), 1);
  EXPECT_NE(err.find("already finished"), std::string::npos) << err;
}

TEST_F(CrashE2ETest, CtrlCStopsEveryChildAndTheRunResumesToTheUndisturbedOne) {
  ExpectCtrlCAndResumeLeaveTheUndisturbedRun("scenarios/quickstart.textproto", sets_);
}

// The same for a decentralized run, whose client models (and the round's
// trained ones) live on the workers: the checkpoint at the stop collects
// them, and the resumed run hands them to its new workers.
TEST_F(CrashE2ETest, CtrlCOfAPeerToPeerRunResumesToTheUndisturbedOne) {
  ExpectCtrlCAndResumeLeaveTheUndisturbedRun("scenarios/dfedsam_fmnist.textproto",
                                             decentralized_sets_, /*pushed=*/2);
}

// A server with no worker used to sit out SIGTERM for its 600 s no-worker
// timeout: it now stops within seconds, with a resumable checkpoint.
TEST_F(CrashE2ETest, ServerWithoutWorkersStopsPromptlyOnSigterm) {
  absl::Notification waiting;
  SubprocessSet procs([&](const std::string& line) {
    // After the initial evaluation (commit 0) it waits for a worker.
    if (CommitOf(line, "server") == 0 && !waiting.HasBeenNotified()) waiting.Notify();
  });
  std::vector<std::string> server = {
      FEDSIM_BINARY, "server", "--scenario=scenarios/quickstart.textproto", "--listen=127.0.0.1:0",
      "--server_out=" + (tmp_ / "srv").string()};
  server.insert(server.end(), sets_.begin(), sets_.end());
  ASSERT_TRUE(procs.Start("server", server).ok());
  ASSERT_TRUE(waiting.WaitForNotificationWithTimeout(absl::Seconds(120)));
  const auto start = std::chrono::steady_clock::now();
  procs.SignalAll(SIGTERM);
  procs.WaitAll(60);
  const double stop_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(procs.children()[0].exit_code, 130) << procs.DescribeFailures();
  EXPECT_LT(stop_s, 10.0);
  EXPECT_TRUE(fs::exists(tmp_ / "srv" / "quickstart" / "checkpoint.bin"));
}

}  // namespace
}  // namespace fedsim
