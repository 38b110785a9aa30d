// End-to-end tests: the real `fedsim` binary, real worker processes over
// loopback gRPC, real Fashion-MNIST (Debian package dataset-fashion-mnist,
// which scripts/install-deps installs).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/e2e_util.h"
#include "tools/subprocess.h"
#include "util/sanitizers.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using e2e::ManifestField;
using e2e::ReadFile;

class E2ETest : public e2e::E2EFixture {
 protected:
  int RunFedsim(const std::vector<std::string>& args, std::string* err = nullptr) {
    return e2e::RunFedsim(args, err);
  }

  // `max_requeued`: the most tasks the killed worker may take down with it
  // (all of the same round). `server_says`: a line the server must log
  // (empty: none).
  void ExpectWorkerKillIsHarmless(const std::string& scenario, const std::vector<std::string>& sets,
                                  const std::string& name, size_t max_requeued,
                                  const std::string& server_says = "");
};

// A sanitizer build trains about 200 times slower (one quickstart commit took
// 143 s under ASan+UBSan), so there the test runs a shortened quickstart:
// the same three modes and the same bit-identity checks, on 3 commits of 2
// clients. The accuracy promise needs the whole run; the normal build checks it.
TEST_F(E2ETest, QuickstartIsBitIdenticalInProcessAndWithOneOrThreeWorkers) {
  auto run = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"run", "scenarios/quickstart.textproto"});
    if (kSanitizerBuild) {
      args.insert(args.end(),
                  {"--set=stop.max_commits=3", "--set=algorithm.fedavg.clients_per_round=2",
                   "--set=eval.test_limit=500"});
    }
    std::string err;
    const int rc = RunFedsim(args, &err);
    return rc == 0 ? std::string() : "exit " + std::to_string(rc) + ": " + err;
  };
  ASSERT_EQ(run({"--inprocess", "--run_dir=" + (tmp_ / "inproc").string()}), "");
  ASSERT_EQ(run({"--workers=1", "--slots=2", "--run_dir=" + (tmp_ / "w1").string()}), "");
  ASSERT_EQ(run({"--workers=3", "--slots=1", "--run_dir=" + (tmp_ / "w3").string()}), "");
  const std::string metrics = ReadFile(tmp_ / "inproc" / "metrics.csv");
  ASSERT_GT(std::count(metrics.begin(), metrics.end(), '\n'), kSanitizerBuild ? 2 : 5);
  EXPECT_EQ(metrics, ReadFile(tmp_ / "w1" / "metrics.csv"));
  EXPECT_EQ(metrics, ReadFile(tmp_ / "w3" / "metrics.csv"));
  const std::string events = ReadFile(tmp_ / "inproc" / "events.jsonl");
  EXPECT_EQ(events, ReadFile(tmp_ / "w1" / "events.jsonl"));
  EXPECT_EQ(events, ReadFile(tmp_ / "w3" / "events.jsonl"));
  const std::string hash = ManifestField(tmp_ / "inproc", "final_model_hash");
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_EQ(hash, ManifestField(tmp_ / "w1", "final_model_hash"));
  EXPECT_EQ(hash, ManifestField(tmp_ / "w3", "final_model_hash"));
  // The quickstart promise: >= 0.80 test accuracy.
  if (!kSanitizerBuild) {
    EXPECT_GE(std::stod(ManifestField(tmp_ / "inproc", "final_accuracy")), 0.80);
  }
}

// Worker pre-aggregation (core/task.h TaskSpec::fold_group): rounds whose
// every update is accepted (FedAvg without deadline or over-selection,
// FedOpt) are summed on the workers, one exact sum per batch, and the
// model, metrics and events are the in-process run's bit for bit with one,
// two and three workers, forked (the default; on local links or over gRPC)
// or started as new processes.
TEST_F(E2ETest, PreAggregatedRoundsAreBitIdenticalInProcessAndWithOneTwoOrThreeWorkers) {
  // A sanitizer build trains about 200 times slower: fewer, smaller rounds.
  const int per_round = kSanitizerBuild ? 6 : 30;
  const std::vector<std::string> common = {
      "--set=num_clients=100",
      kSanitizerBuild ? "--set=dataset.fashion_mnist.train_limit=1200"
                      : "--set=dataset.fashion_mnist.train_limit=6000",
      kSanitizerBuild ? "--set=eval.test_limit=100" : "--set=eval.test_limit=1000",
      "--set=stop.max_commits=3", "--set=eval.every_commits=1"};
  const std::string cohort = "clients_per_round:" + std::to_string(per_round);
  const std::vector<std::pair<std::string, std::string>> rules = {
      {"fedavg", "--set=algorithm={fedavg{" + cohort + " weighting:EXAMPLES}}"},
      {"fedopt", "--set=algorithm={fedopt{" + cohort + " optimizer:ADAM}}"}};
  const std::vector<std::pair<std::string, std::vector<std::string>>> modes = {
      {"inproc", {"--inprocess", "--slots=2"}},
      {"w1", {"--workers=1", "--slots=2"}},
      {"w2", {"--workers=2", "--slots=1"}},
      {"w3", {"--workers=3", "--slots=1"}},
      // Forked workers calling over gRPC instead of local links.
      {"w2grpc", {"--workers=2", "--slots=1", "--worker_link=false"}},
      // Workers started as new processes rather than forks (--fork_workers).
      {"w2new", {"--workers=2", "--slots=1", "--fork_workers=false"}}};
  for (const auto& [rule, algorithm] : rules) {
    for (const auto& [dir, mode] : modes) {
      // Through a shell that sends stdout (the workers' summary lines) to stderr.
      std::vector<std::string> args = {"/bin/sh",
                                       "-c",
                                       "\"$0\" \"$@\" 1>&2",
                                       FEDSIM_BINARY,
                                       "run",
                                       "scenarios/pfl_fmnist.textproto",
                                       "--run_dir=" + (tmp_ / (rule + dir)).string(),
                                       algorithm};
      args.insert(args.end(), mode.begin(), mode.end());
      args.insert(args.end(), common.begin(), common.end());
      std::string err;
      ASSERT_EQ(e2e::RunCommand(args, &err), 0) << rule << " " << dir << ": " << err;
      if (dir == "inproc") continue;
      // Forked workers say so, and train from the data `fedsim run` loaded.
      const bool forked = dir != "w2new";
      const bool linked = forked && dir != "w2grpc";
      EXPECT_EQ(err.find("(forked, sharing the loaded data") != std::string::npos, forked) << err;
      EXPECT_EQ(err.find("sharing the loaded data, on local links)") != std::string::npos, linked)
          << err;
      size_t over_links = 0;
      for (size_t at = 0; (at = err.find("over a local link", at)) != std::string::npos; ++at) {
        ++over_links;
      }
      EXPECT_EQ(over_links, linked ? static_cast<size_t>(std::stoi(dir.substr(1))) : 0u) << err;
      // With every worker on a link there is no gRPC listener to name.
      EXPECT_EQ(err.find(", server on ") == std::string::npos, linked) << err;
      size_t shared = 0;
      for (size_t at = 0;
           (at = err.find("data shared with the process that forked it", at)) != std::string::npos;
           ++at) {
        ++shared;
      }
      EXPECT_EQ(shared, forked ? static_cast<size_t>(std::stoi(dir.substr(1))) : 0u) << err;
      // Sums hold two tasks or more (a batch of one goes as a plain
      // update), and most tasks went in sums.
      std::regex summary_re(
          R"(worker [0-9]+: ([0-9]+) tasks done \([0-9]+ duplicates, [0-9]+ dropped, ([0-9]+) in ([0-9]+) pre-aggregated sums\))");
      int workers = 0;
      uint64_t done = 0, folded = 0, sums = 0;
      for (std::sregex_iterator it(err.begin(), err.end(), summary_re), end; it != end; ++it) {
        ++workers;
        done += std::stoull((*it)[1].str());
        folded += std::stoull((*it)[2].str());
        sums += std::stoull((*it)[3].str());
      }
      EXPECT_EQ(workers, std::stoi(dir.substr(1))) << err;
      EXPECT_EQ(done, 3u * per_round) << err;  // 3 rounds
      EXPECT_LE(folded, done) << err;
      EXPECT_GE(sums, 1u) << err;
      EXPECT_LE(2 * sums, folded) << err;
      // A sanitized worker's slow tasks may leave its batch empty between
      // two leases more often, so there only the bounds above.
      if (!kSanitizerBuild) {
        EXPECT_GE(2 * folded, done) << err;
      }
      // Workers on the server's machine fetch every model through shared
      // memory: as many MB of models there as MB down.
      std::regex bytes_re(
          R"(([0-9.]+) MB down, .*\(in shared memory: [0-9.]+ MB of updates, ([0-9.]+) MB of models\))");
      int lines = 0;
      for (std::sregex_iterator it(err.begin(), err.end(), bytes_re), end; it != end; ++it) {
        ++lines;
        EXPECT_GT(std::stod((*it)[1].str()), 0) << err;
        EXPECT_EQ((*it)[1].str(), (*it)[2].str()) << err;
      }
      EXPECT_EQ(lines, workers) << err;
    }
    const fs::path inproc = tmp_ / (rule + "inproc");
    const std::string metrics = ReadFile(inproc / "metrics.csv");
    ASSERT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 5);  // header + versions 0-3
    for (const char* dir : {"w1", "w2", "w3", "w2grpc", "w2new"}) {
      const fs::path d = tmp_ / (rule + dir);
      EXPECT_EQ(metrics, ReadFile(d / "metrics.csv")) << rule << " " << dir;
      EXPECT_EQ(ReadFile(inproc / "events.jsonl"), ReadFile(d / "events.jsonl"))
          << rule << " " << dir;
      EXPECT_EQ(ManifestField(inproc, "final_model_hash"), ManifestField(d, "final_model_hash"))
          << rule << " " << dir;
    }
  }
}

// Reproducible numerics end to end: workers register with their fingerprint
// in the run's mode (the server would refuse a mismatch), the manifest names
// the mode, and the result is the same in-process and with workers.
TEST_F(E2ETest, ReproducibleModeRunsWithWorkersAndRecordsItsFingerprint) {
  const std::vector<std::string> common = {"run", "scenarios/quickstart.textproto",
                                           "--set=stop.max_commits=3",
                                           "--set=numeric.mode=REPRODUCIBLE"};
  std::string err;
  std::vector<std::string> a = common;
  a.push_back("--inprocess");
  a.push_back("--run_dir=" + (tmp_ / "inproc").string());
  ASSERT_EQ(RunFedsim(a, &err), 0) << err;
  std::vector<std::string> b = common;
  b.push_back("--workers=2");
  b.push_back("--slots=1");
  b.push_back("--run_dir=" + (tmp_ / "w2").string());
  err.clear();
  ASSERT_EQ(RunFedsim(b, &err), 0) << err;
  EXPECT_EQ(err.find("refused"), std::string::npos) << err;
  const std::string fingerprint = ManifestField(tmp_ / "w2", "numeric_fingerprint");
  EXPECT_EQ(fingerprint.rfind("mode=reproducible;", 0), 0u) << fingerprint;
  EXPECT_EQ(fingerprint, ManifestField(tmp_ / "inproc", "numeric_fingerprint"));
  const std::string hash = ManifestField(tmp_ / "inproc", "final_model_hash");
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_EQ(hash, ManifestField(tmp_ / "w2", "final_model_hash"));
}

TEST_F(E2ETest, FedBuffWithLognormalSpeedsIsBitIdenticalInProcessAndWithThreeWorkers) {
  // Asynchronous commits with stale updates: the order of effects must come
  // from virtual time, not from which worker process happens to finish first.
  const std::string scenario = "scenarios/async_fmnist_lognormal.textproto";
  const std::vector<std::string> sets = {"--set=stop.max_virtual_s=60",
                                         "--set=eval.every_virtual_s=10"};
  std::vector<std::string> a = {"run", scenario, "--inprocess", "--slots=2",
                                "--run_dir=" + (tmp_ / "inproc").string()};
  std::vector<std::string> b = {"run", scenario, "--workers=3", "--slots=1",
                                "--run_dir=" + (tmp_ / "w3").string()};
  a.insert(a.end(), sets.begin(), sets.end());
  b.insert(b.end(), sets.begin(), sets.end());
  std::string err;
  ASSERT_EQ(RunFedsim(a, &err), 0) << err;
  err.clear();
  ASSERT_EQ(RunFedsim(b, &err), 0) << err;
  const std::string metrics = ReadFile(tmp_ / "inproc" / "metrics.csv");
  ASSERT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 8);  // header + t = 0, 10, ..., 60
  EXPECT_EQ(metrics, ReadFile(tmp_ / "w3" / "metrics.csv"));
  const std::string events = ReadFile(tmp_ / "inproc" / "events.jsonl");
  EXPECT_EQ(events, ReadFile(tmp_ / "w3" / "events.jsonl"));
  // The run really was asynchronous: some applied update was stale.
  EXPECT_NE(events.find("\"staleness\":2,"), std::string::npos);
  EXPECT_EQ(ManifestField(tmp_ / "inproc", "final_model_hash"),
            ManifestField(tmp_ / "w3", "final_model_hash"));
}

// Decentralized rounds (per-client models published by ModelRef, gossip with
// Q = 3 steps, partial participation) give the same bits in-process and
// with one or three worker processes.
TEST_F(E2ETest, DecentralizedRunIsBitIdenticalInProcessAndWithOneOrThreeWorkers) {
  const std::string scenario = "scenarios/dfedsam_fmnist.textproto";
  const std::vector<std::string> sets = {
      "--set=num_clients=12",
      "--set=dataset.fashion_mnist.train_limit=6000",
      "--set=dataset.fashion_mnist.test_limit=1000",
      "--set=stop.max_commits=4",
      "--set=eval.every_commits=2",
      "--set=eval.client_sample=4",
      "--set=algorithm.decentralized.variant=DFEDSAM_MGS",
      "--set=algorithm.decentralized.gossip_steps=3",
      "--set=algorithm.decentralized.topology={random_regular{degree:4}}",
      "--set=participation={bernoulli{} probability{distribution{constant:0.7}}}"};
  std::vector<std::string> dirs = {"inproc", "w1", "w3"};
  std::vector<std::vector<std::string>> modes = {
      {"--inprocess", "--slots=2"}, {"--workers=1", "--slots=2"}, {"--workers=3", "--slots=1"}};
  for (size_t k = 0; k < dirs.size(); ++k) {
    // Through a shell that sends stdout (the workers' summary lines) to stderr.
    std::vector<std::string> args = {"/bin/sh",
                                     "-c",
                                     "\"$0\" \"$@\" 1>&2",
                                     FEDSIM_BINARY,
                                     "run",
                                     scenario,
                                     "--run_dir=" + (tmp_ / dirs[k]).string()};
    args.insert(args.end(), modes[k].begin(), modes[k].end());
    args.insert(args.end(), sets.begin(), sets.end());
    std::string err;
    ASSERT_EQ(e2e::RunCommand(args, &err), 0) << dirs[k] << ": " << err;
    if (k == 0) continue;
    // Peer to peer: the workers keep the client models and send the server
    // figures only; with three workers they fetch neighbours from each other.
    std::regex summary_re(
        R"(worker [0-9]+: [0-9]+ tasks done .* ([0-9.]+) MB up, ([0-9.]+) MB from peers)");
    int workers = 0;
    double from_peers = 0;
    for (std::sregex_iterator it(err.begin(), err.end(), summary_re), end; it != end; ++it) {
      ++workers;
      EXPECT_EQ((*it)[1].str(), "0.0") << dirs[k] << ": a worker sent the server a tensor";
      from_peers += std::stod((*it)[2].str());
    }
    EXPECT_EQ(workers, k == 1 ? 1 : 3) << err;
    if (k == 2) {
      EXPECT_GT(from_peers, 0) << err;
    }
  }
  const std::string metrics = ReadFile(tmp_ / "inproc" / "metrics.csv");
  ASSERT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 4);  // header + versions 0, 2, 4
  EXPECT_NE(metrics.find("consensus_distance"), std::string::npos);
  EXPECT_NE(metrics.find("client_accuracy_mean"), std::string::npos);
  const std::string events = ReadFile(tmp_ / "inproc" / "events.jsonl");
  // Tasks trained from the clients' own models.
  EXPECT_NE(events.find("\"base_client\":"), std::string::npos);
  for (const char* d : {"w1", "w3"}) {
    EXPECT_EQ(metrics, ReadFile(tmp_ / d / "metrics.csv")) << d;
    EXPECT_EQ(events, ReadFile(tmp_ / d / "events.jsonl")) << d;
    EXPECT_EQ(ManifestField(tmp_ / "inproc", "final_model_hash"),
              ManifestField(tmp_ / d, "final_model_hash"))
        << d;
  }
}

// Runs `scenario` with a server and two workers, SIGKILLs worker w2 as soon
// as it starts training a task after the second commit, and expects the
// server to re-queue exactly that task and the run to end with the results
// of an undisturbed in-process run. `name` is the scenario's name (its run
// folder under --server_out).
void E2ETest::ExpectWorkerKillIsHarmless(
    const std::string& scenario, const std::vector<std::string>& sets, const std::string& name,
    size_t max_requeued, const std::string& server_says) {  // Undisturbed reference.
  ASSERT_NO_FATAL_FAILURE(e2e::RunInProcess(scenario, sets, tmp_ / "ref"));

  // A server and two workers started by hand. Worker w2 logs its tasks; it is
  // SIGKILLed as soon as it starts training a task after the second commit,
  // so the server must find it silent and re-queue exactly that task.
  std::mutex mu;
  std::string address;
  int commits = 0;
  pid_t w2_pid = -1;
  std::string killed_task;     // the task w2 was training when killed
  std::string requeued_tasks;  // what the server said it re-queued
  std::string server_log;      // every line of the server's
  absl::Notification listening, killed, requeued;
  SubprocessSet procs([&](const std::string& line) {
    static const std::regex commit_re(R"(^\[server\] commit ([0-9]+)/)");
    static const std::regex train_re(R"(^\[w2\] fedsim client: task ([0-9]+) .*: training$)");
    static const std::regex requeue_re(
        R"(^\[server\] fedsim server: worker [0-9]+ \(w2\) silent .*requeued [0-9]+ task\(s\): (.*)$)");
    std::smatch m;
    std::lock_guard<std::mutex> lock(mu);
    if (line.rfind("[server]", 0) == 0) server_log += line + "\n";
    if (const std::string a = e2e::ListenAddress(line);
        !a.empty() && !listening.HasBeenNotified()) {
      address = a;
      listening.Notify();
    } else if (std::regex_search(line, m, commit_re)) {
      commits = std::max(commits, std::stoi(m[1]));
    } else if (std::regex_search(line, m, train_re) && commits >= 2 && w2_pid > 0 &&
               !killed.HasBeenNotified()) {
      kill(w2_pid, SIGKILL);  // mid-training: it holds the task's lease
      killed_task = m[1];
      killed.Notify();
    } else if (std::regex_search(line, m, requeue_re) && !requeued.HasBeenNotified()) {
      requeued_tasks = m[1];
      requeued.Notify();
    }
  });
  std::vector<std::string> server = {FEDSIM_BINARY,
                                     "server",
                                     "--scenario=" + scenario,
                                     "--listen=127.0.0.1:0",
                                     "--worker_timeout=1",
                                     "--server_out=" + (tmp_ / "kill").string()};
  server.insert(server.end(), sets.begin(), sets.end());
  ASSERT_TRUE(procs.Start("server", server).ok());
  ASSERT_TRUE(listening.WaitForNotificationWithTimeout(absl::Seconds(60)))
      << "the server never printed its address";
  ASSERT_TRUE(
      procs.Start("w1", {FEDSIM_BINARY, "client", "--server=" + address, "--slots=1", "--name=w1"})
          .ok());
  {
    std::lock_guard<std::mutex> lock(mu);  // before w2 can print a line
    auto w2 = procs.Start("w2", {FEDSIM_BINARY, "client", "--server=" + address, "--slots=1",
                                 "--name=w2", "--log_tasks"});
    ASSERT_TRUE(w2.ok());
    w2_pid = procs.children()[*w2].pid;
  }
  ASSERT_TRUE(killed.WaitForNotificationWithTimeout(absl::Seconds(300)))
      << "w2 never started a task after the second commit";
  // The server notices the silence after --worker_timeout=1 s and gives the
  // task to w1.
  EXPECT_TRUE(requeued.WaitForNotificationWithTimeout(absl::Seconds(120)))
      << "the server never re-queued w2's task";
  {
    std::lock_guard<std::mutex> lock(mu);
    // The task it was training and those it held leased behind it, all of
    // its round. With worker pre-aggregation (FedAvg rounds) these include
    // the tasks it had trained into a sum it had not pushed yet; without it,
    // at most one behind (a worker with short tasks leases two per slot:
    // client/lease_depth.h).
    const std::vector<std::string> ids = absl::StrSplit(requeued_tasks, ", ");
    EXPECT_TRUE(std::find(ids.begin(), ids.end(), killed_task) != ids.end())
        << "requeued " << requeued_tasks << ", killed mid-task " << killed_task;
    EXPECT_LE(ids.size(), max_requeued) << requeued_tasks;
    for (const std::string& id : ids) {
      EXPECT_LT(std::abs(std::stoi(id) - std::stoi(killed_task)), static_cast<int>(max_requeued))
          << "requeued " << requeued_tasks << ", killed mid-task " << killed_task;
    }
  }
  procs.WaitAll(300);
  auto children = procs.children();
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_EQ(children[0].exit_code, 0) << "server failed:\n" << server_log;
  }
  EXPECT_EQ(children[1].exit_code, 0) << "surviving worker failed";
  EXPECT_EQ(children[2].exit_code, 128 + SIGKILL);
  if (!server_says.empty()) {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_NE(server_log.find(server_says), std::string::npos) << server_log;
  }
  EXPECT_EQ(ReadFile(tmp_ / "ref" / "metrics.csv"), ReadFile(tmp_ / "kill" / name / "metrics.csv"));
  EXPECT_EQ(ManifestField(tmp_ / "ref", "final_model_hash"),
            ManifestField(tmp_ / "kill" / name, "final_model_hash"));
}

TEST_F(E2ETest, WorkerKilledMidRunIsReplacedAndTheResultIsUnchanged) {
  ExpectWorkerKillIsHarmless("scenarios/quickstart.textproto",
                             {"--set=stop.max_commits=6", "--set=eval.every_commits=1"},
                             "quickstart", /*max_requeued=*/10);  // a round's 10 tasks
}

// The same for decentralized rounds, whose client models live on the workers
// (peer to peer): the killed worker's clients continue on the worker that
// held their backups, and its task is retrained there from the same model.
TEST_F(E2ETest, WorkerKilledMidDecentralizedRoundIsReplacedAndTheResultIsUnchanged) {
  ExpectWorkerKillIsHarmless(
      "scenarios/dfedsam_fmnist.textproto",
      {"--set=num_clients=12", "--set=dataset.fashion_mnist.train_limit=6000",
       "--set=dataset.fashion_mnist.test_limit=1000", "--set=stop.max_commits=5",
       "--set=eval.every_commits=1", "--set=eval.client_sample=4",
       "--set=algorithm.decentralized.topology={ring{}}"},
      "dfedsam_fmnist", /*max_requeued=*/2, "which held their backups");
}

TEST_F(E2ETest, BadScenarioGivesFileLineColumnAndNonZeroExit) {
  const fs::path bad = tmp_ / "bad.textproto";
  std::ofstream(bad) << "name: \"x\"\nnum_clients: 10\nlocal { lrr: 0.1 }\n";
  std::string err;
  EXPECT_EQ(RunFedsim({"run", bad.string(), "--inprocess"}, &err), 1);
  EXPECT_NE(err.find(bad.string() + ":3:"), std::string::npos) << err;
}

// The promise of README's "Adding an aggregation rule": FedOpt was added as
// one file, one oneof field and one registry row, with no edit in config/.
// `fedsim validate` checks it with file:line:col and reports its state size,
// and a run with it completes.
TEST_F(E2ETest, RuleAddedThroughTheRegistryIsValidatedAndRuns) {
  const std::string body =
      "num_clients: 10\n"
      "dataset { synthetic { examples_per_client: 60 } }\n"
      "model { softmax {} }\n"
      "local { steps: 5 batch_size: 10 lr: 0.1 }\n"
      "stop { max_commits: 3 }\n";
  const fs::path bad = tmp_ / "bad.textproto";
  std::ofstream(bad) << body << "algorithm {\n  fedopt {\n    clients_per_round: 4\n"
                     << "    beta1: 1.5\n  }\n}\n";
  std::string err;
  EXPECT_EQ(RunFedsim({"validate", bad.string()}, &err), 1);
  EXPECT_NE(err.find(bad.string() + ":9:5: algorithm.fedopt.beta1: 1.5 is outside [0, 1)"),
            std::string::npos)
      << err;

  const fs::path good = tmp_ / "good.textproto";
  std::ofstream(good) << body << "algorithm { fedopt { optimizer: YOGI clients_per_round: 4 } }\n";
  const fs::path out = tmp_ / "validate.out";
  SubprocessSet set;
  ASSERT_TRUE(set.Start("validate", {"/bin/sh", "-c",
                                     std::string(FEDSIM_BINARY) + " validate '" + good.string() +
                                         "' > '" + out.string() + "'"})
                  .ok());
  set.WaitAll(60);
  ASSERT_EQ(set.children()[0].exit_code, 0);
  const std::string resolved = ReadFile(out);
  EXPECT_NE(resolved.find("server_lr: 0.01"), std::string::npos) << resolved;  // rule's default
  EXPECT_NE(resolved.find("# model: softmax(60-10), 610 params"), std::string::npos) << resolved;
  EXPECT_NE(resolved.find("# algorithm state: 2 model copies x 610 params x 4 B = 0.00488 MB"),
            std::string::npos)
      << resolved;

  err.clear();
  ASSERT_EQ(RunFedsim({"run", good.string(), "--inprocess", "--run_dir=" + (tmp_ / "run").string()},
                      &err),
            0)
      << err;
  const std::string metrics = ReadFile(tmp_ / "run" / "metrics.csv");
  EXPECT_GE(std::count(metrics.begin(), metrics.end(), '\n'), 4);  // header + 3 commits
  EXPECT_EQ(ManifestField(tmp_ / "run", "final_model_hash").size(), 64u);
}

TEST_F(E2ETest, SplitWritesEveryClientsDataAndRefusesToOverwriteWithoutForce) {
  const std::vector<std::string> args = {"split",
                                         "scenarios/quickstart.textproto",
                                         "--set=num_clients=4",
                                         "--set=algorithm.fedavg.clients_per_round=2",
                                         "--set=dataset.fashion_mnist.train_limit=2000",
                                         "--set=dataset.fashion_mnist.test_limit=500",
                                         "--out=" + (tmp_ / "split").string()};
  std::string err;
  ASSERT_EQ(RunFedsim(args, &err), 0) << err;
  const std::string index = ReadFile(tmp_ / "split" / "index.csv");
  EXPECT_NE(index.find("client,name,train_rows,test_rows\n0,client-0000,"), std::string::npos)
      << index;
  // The clients' training rows are the 2000 rows, their test rows the 500.
  std::istringstream lines(index);
  std::string line;
  uint64_t train = 0, test = 0, clients = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("client,", 0) == 0) continue;
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    ASSERT_EQ(cells.size(), 4u) << line;
    EXPECT_TRUE(std::filesystem::exists(tmp_ / "split" / cells[1] / "train-images-idx3-ubyte.gz"));
    train += std::stoull(cells[2]);
    test += std::stoull(cells[3]);
    ++clients;
  }
  EXPECT_EQ(clients, 4u);
  EXPECT_EQ(train, 2000u);
  EXPECT_EQ(test, 500u);
  // Nothing is overwritten by accident.
  EXPECT_EQ(RunFedsim(args, &err), 1);
  EXPECT_NE(err.find("already holds files"), std::string::npos) << err;
  std::vector<std::string> forced = args;
  forced.push_back("--force");
  EXPECT_EQ(RunFedsim(forced, &err), 0) << err;
  EXPECT_EQ(ReadFile(tmp_ / "split" / "index.csv"), index);
}

TEST_F(E2ETest, UnknownCommandSuggestsTheNearestOne) {
  std::string err;
  EXPECT_EQ(RunFedsim({"rnu"}, &err), 2);
  EXPECT_NE(err.find("did you mean 'run'"), std::string::npos) << err;
}

}  // namespace
}  // namespace fedsim
