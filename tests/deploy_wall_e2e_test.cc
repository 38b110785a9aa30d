// A deployment on the wall clock, end to end with the real `fedsim` binary:
// `fedsim split` writes 6 clients' folders; a server that holds no data and 3
// `fedsim client` processes, each bringing 2 of the folders, run FedAvg with
// `clock { mode: WALL }` over TLS (mutual) with a run token. The server waits
// until every listed client's worker is connected, then runs 10 rounds with
// whoever is connected and evaluates on the connected clients' test splits.
// On the wall clock the run is not the simulation bit for bit (updates are
// taken in arrival order), but it is the same training: its federated
// accuracy after 10 rounds must be within 1 point of the simulated run's
// test accuracy on the same data.
//
// As root with `ip netns` (iproute2), each process is its own host: the
// server in one network namespace, each client in another, joined by a
// bridge (tests/netns_fixture.h), so every byte crosses a veth link. Without
// them, all run on loopback; the deployment is otherwise the same.
#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <mutex>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/e2e_util.h"
#include "tests/netns_fixture.h"
#include "tools/subprocess.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using e2e::ManifestField;
using e2e::ReadFile;
using e2e::RunCommand;
using e2e::RunFedsim;

// A namespace is private, so a fixed port cannot collide; on loopback the
// server picks a free one (":0") and prints it.
constexpr char kNamespacePort[] = "50051";
constexpr int kWorkers = 3;

// A CSV file with a header row, read by column name.
struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;

  // The cell of `row` in column `name`; a test failure and "" if there is none.
  std::string Get(size_t row, const std::string& name) const {
    const auto col = std::find(header.begin(), header.end(), name);
    if (col == header.end()) {
      ADD_FAILURE() << "no column " << name << " in a CSV with the columns "
                    << absl::StrJoin(header, ",");
      return "";
    }
    if (row >= rows.size() || rows[row].size() != header.size()) {
      ADD_FAILURE() << "row " << row << " is missing or has the wrong number of cells";
      return "";
    }
    return rows[row][col - header.begin()];
  }
  // The same as a number (NaN for "" or anything else that is not one).
  double Number(size_t row, const std::string& name) const {
    const std::string cell = Get(row, name);
    try {
      return std::stod(cell);
    } catch (const std::exception&) {
      ADD_FAILURE() << name << " in row " << row << " is '" << cell << "', not a number";
      return std::nan("");
    }
  }
};

Csv ReadCsv(const fs::path& path) {
  Csv csv;
  std::vector<std::string> lines = absl::StrSplit(ReadFile(path), '\n', absl::SkipEmpty());
  if (lines.empty()) return csv;
  csv.header = absl::StrSplit(lines[0], ',');
  for (size_t i = 1; i < lines.size(); ++i) csv.rows.push_back(absl::StrSplit(lines[i], ','));
  return csv;
}

class DeployWallE2ETest : public e2e::E2EFixture {
 protected:
  // A small quickstart: 6 clients, 3 per round, 10 rounds (deploy_e2e_test's
  // scenario, run longer so that accuracy is past its first steep climb).
  const std::vector<std::string> sets_ = {
      "--set=num_clients=6", "--set=algorithm.fedavg.clients_per_round=3",
      "--set=dataset.fashion_mnist.train_limit=6000", "--set=dataset.fashion_mnist.test_limit=2000",
      "--set=stop.max_commits=10"};

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(e2e::E2EFixture::SetUp());
    std::string unavailable;
    ASSERT_NO_FATAL_FAILURE(net_.Create(&unavailable));
    hosts_ = unavailable.empty();
    // Said, not skipped: the loopback run checks all but the network.
    if (!hosts_) std::cerr << "on loopback: " << unavailable << "\n";
  }

  void TearDown() override {
    net_.Destroy();
    e2e::E2EFixture::TearDown();
  }

  // `fedsim ARGS...` on the server's host (worker < 0) or worker's.
  std::vector<std::string> OnHost(int worker, const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {e2e::Binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    if (!hosts_) return argv;
    return net_.InNamespace(worker < 0 ? net_.server_ns() : net_.worker_ns(worker), argv);
  }

  std::string Folder(int i) const {
    return (tmp_ / "split" / ("client-000" + std::to_string(i))).string();
  }

  // Whether the processes run in namespaces of their own.
  bool hosts_ = false;
  e2e::NetNamespaces net_{{.prefix = "fedsim-dw-", .subnet = "10.78.0.0/24", .workers = kWorkers}};
};

TEST_F(DeployWallE2ETest, WallClockDeploymentOverTlsReachesTheSimulatedAccuracy) {
  const fs::path certs = tmp_ / "certs";
  {
    std::vector<std::string> argv = {"/bin/bash", "scripts/make-test-certs", certs.string()};
    if (hosts_) argv.push_back(net_.server_address());  // 127.0.0.1 is always in
    std::string err;
    ASSERT_EQ(RunCommand(argv, &err, 60), 0) << err;
  }
  // The simulation: virtual clock, the server holding the central data.
  ASSERT_NO_FATAL_FAILURE(e2e::RunInProcess("scenarios/quickstart.textproto", sets_, tmp_ / "ref"));
  {
    std::vector<std::string> args = {"split", "scenarios/quickstart.textproto",
                                     "--out=" + (tmp_ / "split").string()};
    args.insert(args.end(), sets_.begin(), sets_.end());
    std::string err;
    ASSERT_EQ(RunFedsim(args, &err), 0) << err;
  }

  std::mutex mu;
  std::string listening_on;             // guarded by mu
  std::vector<std::string> server_log;  // guarded by mu: every stderr line of the server
  absl::Notification listening;
  // Declared after what its reader threads touch, so it is destroyed (its
  // children killed, its readers joined) first, also on an early return.
  SubprocessSet procs([&](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    if (line.rfind("[server] ", 0) == 0) server_log.push_back(line);
    if (const std::string a = e2e::ListenAddress(line); !a.empty() && listening_on.empty()) {
      listening_on = a;
      listening.Notify();
    }
  });
  const std::string listen =
      hosts_ ? net_.server_address() + ":" + kNamespacePort : std::string("127.0.0.1:0");
  // The README's deployment: TLS, mutual TLS (the server checks the workers'
  // certificates against the CA) and a run token.
  const std::string ca = "--tls_ca=" + (certs / "ca.pem").string();
  const std::string token = "--token_file=" + (certs / "token").string();
  std::vector<std::string> server = {"server",
                                     "--scenario=scenarios/quickstart.textproto",
                                     "--listen=" + listen,
                                     "--server_out=" + (tmp_ / "srv").string(),
                                     "--tls_cert=" + (certs / "server.pem").string(),
                                     "--tls_key=" + (certs / "server.key").string(),
                                     ca,
                                     token};
  // The split's client list; no data (a dataset folder that does not exist);
  // the wall clock with real durations (time_scale 0: nothing sleeps to
  // emulate a device).
  for (const std::string& set :
       {"--set=deployment.clients_file=" + (tmp_ / "split" / "index.csv").string(),
        "--set=dataset.fashion_mnist.dir=" + (tmp_ / "no-data-here").string(),
        std::string("--set=clock={mode:WALL time_scale:0}")}) {
    server.push_back(set);
  }
  server.insert(server.end(), sets_.begin(), sets_.end());
  ASSERT_TRUE(procs.Start("server", OnHost(-1, server), (tmp_ / "server.out").string()).ok());
  // Until it listens or exits (a refusal is reported at once, not in 60 s).
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!listening.WaitForNotificationWithTimeout(absl::Milliseconds(200)) && procs.Poll() > 0 &&
         absl::Now() < deadline) {
  }
  ASSERT_TRUE(listening.HasBeenNotified())
      << "the server never said it listens: " << procs.DescribeFailures();
  std::string at;
  {
    std::lock_guard<std::mutex> lock(mu);
    at = listening_on;
  }
  if (hosts_) {
    EXPECT_EQ(at, listen);
  }

  // Two clients each; not the pairs a simulation worker would train together.
  const std::vector<std::pair<int, int>> pairs = {{0, 5}, {1, 3}, {2, 4}};
  for (int w = 0; w < kWorkers; ++w) {
    const std::string name = "w" + std::to_string(w + 1);
    const std::vector<std::string> client = {
        "client",
        "--server=" + at,
        ca,
        "--tls_cert=" + (certs / "client.pem").string(),
        "--tls_key=" + (certs / "client.key").string(),
        token,
        "--slots=1",
        "--name=" + name,
        "--data=" + Folder(pairs[w].first) + "," + Folder(pairs[w].second)};
    ASSERT_TRUE(procs.Start(name, OnHost(w, client), (tmp_ / name).string()).ok());
  }
  const absl::Time start = absl::Now();
  procs.WaitAll(420);
  std::cerr << "deployment run: " << absl::ToDoubleSeconds(absl::Now() - start) << " s on "
            << (hosts_ ? "network namespaces" : "loopback") << "\n";
  const auto children = procs.children();
  ASSERT_EQ(children.size(), 1u + kWorkers);
  for (const auto& c : children) {
    EXPECT_EQ(c.exit_code, 0) << c.name << ": " << procs.DescribeFailures();
    EXPECT_FALSE(c.killed_by_wait) << c.name << " outlived the run (420 s)";
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_FALSE(HasFailure()) << "the server's log:\n" << absl::StrJoin(server_log, "\n");
  }

  const fs::path run = tmp_ / "srv" / "quickstart";
  const Csv ref = ReadCsv(tmp_ / "ref" / "metrics.csv");
  const Csv got = ReadCsv(run / "metrics.csv");
  // One evaluation per version, 0 (the initial model) to 10, in each run.
  ASSERT_EQ(ref.rows.size(), 11u) << ReadFile(tmp_ / "ref" / "metrics.csv");
  ASSERT_EQ(got.rows.size(), 11u) << ReadFile(run / "metrics.csv");
  for (size_t r = 0; r < got.rows.size(); ++r) {
    EXPECT_EQ(got.Get(r, "version"), std::to_string(r));
    EXPECT_EQ(ref.Get(r, "version"), std::to_string(r));
    // All six clients in every evaluation, the initial model's included: the
    // server waited for every listed client, and none left before the end.
    EXPECT_EQ(got.Number(r, "fed_clients"), 6) << "version " << r;
  }
  EXPECT_EQ(ManifestField(run, "final_version"), "10");
  const std::string events = ReadFile(run / "events.jsonl");
  static const std::regex eval_re(R"re("ev":"eval")re");
  EXPECT_EQ(std::distance(std::sregex_iterator(events.begin(), events.end(), eval_re),
                          std::sregex_iterator()),
            11);

  const size_t last = got.rows.size() - 1;
  const double fed = got.Number(last, "fed_accuracy");
  // A server without data reports the clients' figure as its test accuracy.
  EXPECT_EQ(got.Number(last, "test_accuracy"), fed);
  const std::string manifest_accuracy = ManifestField(run, "final_accuracy");
  EXPECT_TRUE(!manifest_accuracy.empty() && std::abs(std::stod(manifest_accuracy) - fed) < 1e-6)
      << "the manifest's final_accuracy is '" << manifest_accuracy << "', metrics.csv's " << fed;
  const double simulated = ref.Number(last, "test_accuracy");
  std::cerr << "final accuracy: deployment " << fed << ", simulation " << simulated << "\n";
  // Far above chance (0.1), so that "within a point" compares two trained models.
  EXPECT_GT(simulated, 0.5);
  // Per version, to tell a different training from the noise of one round.
  auto series = [](const Csv& csv, const std::string& column) {
    std::vector<std::string> v;
    for (size_t r = 0; r < csv.rows.size(); ++r) v.push_back(csv.Get(r, column));
    return absl::StrJoin(v, " ");
  };
  EXPECT_NEAR(fed, simulated, 0.01)
      << "the wall-clock deployment trains differently; accuracy by version:\n  deployment "
      << series(got, "fed_accuracy") << "\n  simulation " << series(ref, "test_accuracy");
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_NE(absl::StrJoin(server_log, "\n").find("6 of 6 clients connected: starting the run"),
              std::string::npos)
        << "the server did not wait for its clients:\n"
        << absl::StrJoin(server_log, "\n");
  }
  // While every client stays connected (no "avail" event), the deployment
  // selects as the simulation does and FedAvg sums each round in dispatch
  // order, so the model is the simulation's bit for bit, whatever order the
  // updates arrived in.
  if (events.find(R"("ev":"avail")") == std::string::npos) {
    EXPECT_EQ(ManifestField(run, "final_model_hash"),
              ManifestField(tmp_ / "ref", "final_model_hash"));
  } else {
    std::cerr << "a client left during the run; its model is compared by accuracy only\n";
  }
  // The event log replays the deployment in simulation, on the data the
  // server never had.
  std::string err;
  EXPECT_EQ(RunFedsim({"replay", run.string(), "--out=" + (tmp_ / "replays").string(),
                       "--set=dataset.fashion_mnist.dir=/usr/share/datasets/fashion-mnist"},
                      &err),
            0)
      << err;
}

}  // namespace
}  // namespace fedsim
