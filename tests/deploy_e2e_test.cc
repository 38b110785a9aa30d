// Deployed clients that bring their own data, end to end with the real
// `fedsim` binary: `fedsim split` writes each client's folder, a server
// whose scenario names the client list hands each client's tasks only to the
// worker holding its folder, the run equals the simulation bit for bit, and
// the clients' federated evaluation on their own test splits gives the
// simulation's central test accuracy.
// Workers of the wrong kind or with folders the list does not know are
// refused with a message that says what to do.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <mutex>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
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

class DeployE2ETest : public e2e::E2EFixture {
 protected:
  // A small quickstart: 6 clients, 3 per round, 4 rounds.
  const std::vector<std::string> sets_ = {
      "--set=num_clients=6", "--set=algorithm.fedavg.clients_per_round=3",
      "--set=dataset.fashion_mnist.train_limit=6000", "--set=dataset.fashion_mnist.test_limit=2000",
      "--set=stop.max_commits=4"};

  void Split() {
    std::vector<std::string> args = {"split", "scenarios/quickstart.textproto",
                                     "--out=" + (tmp_ / "split").string()};
    args.insert(args.end(), sets_.begin(), sets_.end());
    std::string err;
    ASSERT_EQ(RunFedsim(args, &err), 0) << err;
  }

  std::string Folder(int i) const {
    return (tmp_ / "split" / ("client-000" + std::to_string(i))).string();
  }

  // Starts the server with the split's client list (unless `with_list` is
  // false); returns its address ("" on failure, with a test failure
  // recorded).
  std::string StartServer(const std::string& extra_set = "", bool with_list = true) {
    return StartServer(std::vector<std::string>{extra_set}, with_list);
  }
  std::string StartServer(const std::vector<std::string>& extra, bool with_list = true) {
    std::vector<std::string> server = {
        FEDSIM_BINARY, "server", "--scenario=scenarios/quickstart.textproto",
        "--listen=127.0.0.1:0", "--server_out=" + (tmp_ / "srv").string()};
    if (with_list) {
      server.push_back("--set=deployment.clients_file=" + (tmp_ / "split" / "index.csv").string());
    }
    server.insert(server.end(), sets_.begin(), sets_.end());
    for (const std::string& e : extra) {
      if (!e.empty()) server.push_back(e);
    }
    EXPECT_TRUE(procs_.Start("server", server).ok());
    EXPECT_TRUE(listening_.WaitForNotificationWithTimeout(absl::Seconds(60)))
        << "the server never printed its address";
    std::lock_guard<std::mutex> lock(mu_);
    return address_;
  }

  // Whether some process printed a line containing `text` within `timeout`.
  bool WaitForLine(const std::string& text, absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const std::string& line : lines_) {
          if (line.find(text) != std::string::npos) return true;
        }
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  std::mutex mu_;
  std::string address_;
  std::vector<std::string> lines_;
  absl::Notification listening_;
  SubprocessSet procs_{[this](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    lines_.push_back(line);
    if (const std::string a = e2e::ListenAddress(line); !a.empty() && address_.empty()) {
      address_ = a;
      listening_.Notify();
    }
  }};
};

// Both server kinds: one that holds no data at all (its dataset folder does
// not even exist; test figures are the clients'), and one that also
// evaluates on the scenario's test set.
class DeployRunTest : public DeployE2ETest, public ::testing::WithParamInterface<bool> {};

TEST_P(DeployRunTest, WorkersWithTheirOwnFoldersReproduceTheSimulation) {
  const bool central = GetParam();
  e2e::RunInProcess("scenarios/quickstart.textproto", sets_, tmp_ / "ref");
  ASSERT_NO_FATAL_FAILURE(Split());
  const std::string at =
      StartServer(central ? "--set=deployment.central_test_set=true"
                          : "--set=dataset.fashion_mnist.dir=" + (tmp_ / "no-data-here").string());
  ASSERT_FALSE(at.empty());
  // Three workers, two clients each; the pairs are not the ones a simulation
  // worker would train together.
  const std::vector<std::pair<int, int>> pairs = {{0, 5}, {1, 3}, {2, 4}};
  for (size_t w = 0; w < pairs.size(); ++w) {
    ASSERT_TRUE(procs_
                    .Start("w" + std::to_string(w),
                           {FEDSIM_BINARY, "client", "--server=" + at, "--slots=1",
                            "--data=" + Folder(pairs[w].first) + "," + Folder(pairs[w].second)})
                    .ok());
  }
  procs_.WaitAll(300);
  for (const auto& child : procs_.children()) {
    ASSERT_EQ(child.exit_code, 0) << procs_.DescribeFailures();
  }
  const fs::path run = tmp_ / "srv" / "quickstart";
  // The simulation's columns, then the federated evaluation's. The clients'
  // test splits partition the test set, so the federated accuracy is the
  // central one and the loss agrees to rounding (it is summed per client).
  const std::vector<std::string> ref_rows =
      absl::StrSplit(ReadFile(tmp_ / "ref" / "metrics.csv"), '\n');
  const std::vector<std::string> rows = absl::StrSplit(ReadFile(run / "metrics.csv"), '\n');
  ASSERT_EQ(rows.size(), ref_rows.size());
  ASSERT_GE(rows.size(), 6u);  // header, versions 0..4, the final newline
  std::vector<std::string> header = absl::StrSplit(rows[0], ',');
  const std::vector<std::string> ref_header = absl::StrSplit(ref_rows[0], ',');
  const size_t columns = ref_header.size();
  ASSERT_EQ(header.size(), columns + 6);
  EXPECT_EQ(std::vector<std::string>(header.begin(), header.begin() + columns), ref_header);
  EXPECT_EQ(absl::StrJoin(std::vector<std::string>(header.begin() + columns, header.end()), ","),
            "fed_loss,fed_accuracy,fed_acc_min,fed_acc_max,fed_acc_std,fed_clients");
  auto cell = [&](const std::vector<std::string>& cells, const std::string& name) {
    const size_t i = std::find(header.begin(), header.end(), name) - header.begin();
    return std::stod(cells.at(i));
  };
  for (size_t r = 1; r + 1 < rows.size(); ++r) {
    const std::vector<std::string> cells = absl::StrSplit(rows[r], ',');
    const std::vector<std::string> want = absl::StrSplit(ref_rows[r], ',');
    ASSERT_EQ(cells.size(), columns + 6) << rows[r];
    for (size_t c = 0; c < columns; ++c) {
      if (header[c] == "test_loss" && !central) {
        EXPECT_NEAR(std::stod(cells[c]), std::stod(want[c]), 1e-6) << rows[r];
      } else {
        EXPECT_EQ(cells[c], want[c]) << header[c] << " in " << rows[r];
      }
    }
    EXPECT_EQ(cell(cells, "fed_accuracy"), cell(cells, "test_accuracy")) << rows[r];
    EXPECT_NEAR(cell(cells, "fed_loss"), cell(cells, "test_loss"), 1e-6) << rows[r];
    EXPECT_EQ(cell(cells, "fed_clients"), 6) << rows[r];
    EXPECT_LE(cell(cells, "fed_acc_min"), cell(cells, "fed_accuracy"));
    EXPECT_GE(cell(cells, "fed_acc_max"), cell(cells, "fed_accuracy"));
  }
  // The event log likewise, but for the loss of the evaluations of a server
  // without data (the clients' sums, added per client).
  auto events = [&](const fs::path& dir) {
    const std::string text = ReadFile(dir / "events.jsonl");
    return central ? text : std::regex_replace(text, std::regex(R"("loss":[^,]*,)"), "");
  };
  EXPECT_EQ(events(tmp_ / "ref"), events(run));
  EXPECT_NE(events(run).find(R"("ev":"eval")"), std::string::npos);
  const std::string hash = ManifestField(tmp_ / "ref", "final_model_hash");
  EXPECT_EQ(hash.size(), 64u);
  EXPECT_EQ(hash, ManifestField(run, "final_model_hash"));
}

INSTANTIATE_TEST_SUITE_P(Server, DeployRunTest, ::testing::Values(false, true),
                         [](const auto& info) {
                           return info.param ? std::string("WithCentralTestSet")
                                             : std::string("WithoutData");
                         });

// Without a list the server admits clients by name as their workers
// register; with the workers started in the split's order the slots are the
// simulation's client ids, so the run is the simulation's, and the run
// folder keeps the admitted list for a resumed server.
TEST_F(DeployE2ETest, ClientsAdmittedByNameReproduceTheSimulation) {
  e2e::RunInProcess("scenarios/quickstart.textproto", sets_, tmp_ / "ref");
  ASSERT_NO_FATAL_FAILURE(Split());
  const std::string at = StartServer("--set=deployment.admit_clients=true", /*with_list=*/false);
  ASSERT_FALSE(at.empty());
  for (int w = 0; w < 3; ++w) {
    ASSERT_TRUE(
        procs_
            .Start("w" + std::to_string(w), {FEDSIM_BINARY, "client", "--server=" + at, "--slots=1",
                                             "--data=" + Folder(2 * w) + "," + Folder(2 * w + 1)})
            .ok());
    ASSERT_TRUE(WaitForLine(absl::StrCat("; ", 2 * w + 2, " of 6 admitted)"), absl::Seconds(60)))
        << "worker " << w << "'s clients were never admitted";
  }
  procs_.WaitAll(300);
  for (const auto& child : procs_.children()) {
    ASSERT_EQ(child.exit_code, 0) << procs_.DescribeFailures();
  }
  const fs::path run = tmp_ / "srv" / "quickstart";
  EXPECT_EQ(ManifestField(tmp_ / "ref", "final_model_hash"),
            ManifestField(run, "final_model_hash"));
  // The admitted list: the split's, but for the comment lines.
  auto rows = [](const std::string& text) {
    return std::regex_replace(text, std::regex("(^|\n)#[^\n]*"), "");
  };
  EXPECT_EQ(rows(ReadFile(run / "clients.csv")), rows(ReadFile(tmp_ / "split" / "index.csv")));
}

// On the wall clock a client is available while its worker is connected:
// a worker killed mid-run takes its two clients away (logged), a new one
// with the same folders brings them back to their slots, the run completes,
// and fedsim replay reproduces it in simulation, availability included.
TEST_F(DeployE2ETest, OnTheWallClockClientsComeAndGoAndTheRunReplays) {
  ASSERT_NO_FATAL_FAILURE(Split());
  const std::string at =
      StartServer({"--set=clock={mode:WALL}", "--set=stop.max_commits=30", "--worker_timeout=1.5"});
  ASSERT_FALSE(at.empty());
  const std::vector<std::pair<int, int>> pairs = {{0, 5}, {1, 3}, {2, 4}};
  auto start_worker = [&](const std::string& name, int w) {
    return procs_
        .Start(name, {FEDSIM_BINARY, "client", "--server=" + at, "--slots=1",
                      "--data=" + Folder(pairs[w].first) + "," + Folder(pairs[w].second)})
        .ok();
  };
  for (int w = 0; w < 3; ++w) ASSERT_TRUE(start_worker("w" + std::to_string(w), w));
  ASSERT_TRUE(WaitForLine("6 of 6 clients connected: starting the run", absl::Seconds(60)));
  ASSERT_TRUE(WaitForLine("commit 3/30", absl::Seconds(60)));
  pid_t victim = -1;
  for (const auto& child : procs_.children()) {
    if (child.name == "w2") victim = child.pid;
  }
  ASSERT_GT(victim, 0);
  ASSERT_EQ(kill(victim, SIGKILL), 0);
  ASSERT_TRUE(WaitForLine("silent for", absl::Seconds(30)))
      << "the server never dropped the killed worker";
  ASSERT_TRUE(start_worker("w2-again", 2));
  procs_.WaitAll(300);
  for (const auto& child : procs_.children()) {
    if (child.name == "w2") continue;  // killed by the test
    ASSERT_EQ(child.exit_code, 0) << procs_.DescribeFailures();
  }
  const fs::path run = tmp_ / "srv" / "quickstart";
  EXPECT_EQ(ManifestField(run, "final_version"), "30");
  const std::string events = ReadFile(run / "events.jsonl");
  for (int c : {2, 4}) {
    const std::regex away(absl::StrCat(R"re("client":)re", c, R"re(,"on":false)re"));
    const std::regex back(absl::StrCat(R"re("client":)re", c, R"re(,"on":true)re"));
    std::smatch m_away, m_back;
    ASSERT_TRUE(std::regex_search(events, m_away, away)) << "client " << c << " never went away";
    ASSERT_TRUE(std::regex_search(events, m_back, back)) << "client " << c << " never came back";
    EXPECT_LT(m_away.position(), m_back.position());
  }
  std::string err;
  EXPECT_EQ(RunFedsim({"replay", run.string(), "--out=" + (tmp_ / "replays").string()}, &err), 0)
      << err;
}

TEST_F(DeployE2ETest, WorkersThatDoNotFitTheClientListAreRefused) {
  ASSERT_NO_FATAL_FAILURE(Split());
  // A folder whose name the list does not know (a copy under another name).
  fs::copy(Folder(0), tmp_ / "stranger");
  const std::string at = StartServer();
  ASSERT_FALSE(at.empty());
  std::string err;
  EXPECT_NE(RunFedsim({"client", "--server=" + at, "--connect_timeout_s=20"}, &err), 0);
  EXPECT_NE(err.find("brings no client data"), std::string::npos) << err;
  EXPECT_NE(err.find("--data=FOLDER"), std::string::npos) << err;
  EXPECT_NE(RunFedsim({"client", "--server=" + at, "--data=" + (tmp_ / "stranger").string()}, &err),
            0);
  EXPECT_NE(err.find("brings client 'stranger', which is not in this run's client list"),
            std::string::npos)
      << err;
  EXPECT_EQ(RunFedsim({"client", "--server=" + at, "--data=" + (tmp_ / "nowhere").string()}, &err),
            2);
  EXPECT_NE(err.find("is not a folder"), std::string::npos) << err;
  procs_.SignalAll(SIGTERM);
  procs_.WaitAll(30);
}

}  // namespace
}  // namespace fedsim
