// Across machines, as far as one machine allows (issue 15): `fedsim server` in
// one Linux network namespace, listening on that namespace's own address, and
// a `fedsim client` in each of two others, every host joined to a bridge in
// the server's namespace by a veth pair:
//
//   fedsim-mh-PID-w1  eth0 10.77.0.2 --veth-- w1 -+
//                                                 br0 10.77.0.1  fedsim-mh-PID-srv
//   fedsim-mh-PID-w2  eth0 10.77.0.3 --veth-- w2 -+
//
// A worker's namespace has only its loopback and that veth, so every byte it
// trades with the server crosses the link. The deployment is the README's:
// TLS with the server's certificate for its address, mutual TLS and a run
// token, all from scripts/make-test-certs. The final model, metrics and event
// log must be the in-process run's, bit for bit.
//
// Needs root and `ip netns` (iproute2); skipped, saying which, without them.
// The namespaces (tests/netns_fixture.h) are deleted in TearDown, whether the
// test passed or not, and those of an earlier test process that was killed
// are deleted at SetUp.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
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

// The namespaces are private, so a fixed port cannot collide.
constexpr char kServerPort[] = "50051";

class MultiHostE2ETest : public e2e::E2EFixture {
 protected:
  // The quickstart, shortened to fit the test's time: 20,000 training images
  // over its 20 clients, 8 commits of 10 clients each.
  const std::vector<std::string> sets_ = {"--set=dataset.fashion_mnist.train_limit=20000",
                                          "--set=stop.max_commits=8"};

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(e2e::E2EFixture::SetUp());
    std::string unavailable;
    ASSERT_NO_FATAL_FAILURE(net_.Create(&unavailable));
    if (!unavailable.empty()) GTEST_SKIP() << unavailable;
  }

  void TearDown() override {
    net_.Destroy();
    e2e::E2EFixture::TearDown();
  }

  // scripts/make-test-certs into `certs`: TLS files for the server's
  // address and the run token.
  void MakeCerts(const fs::path& certs) {
    std::string err;
    ASSERT_EQ(
        RunCommand({"/bin/bash", "scripts/make-test-certs", certs.string(), net_.server_address()},
                   &err, 60),
        0)
        << err;
  }

  // `fedsim client --server=ENDPOINT FLAGS(i) --slots=1 --name=wI` in the
  // namespace of worker host i, for each host, its output to tmp_/wI.
  void StartWorkers(SubprocessSet* procs, const std::string& endpoint,
                    const std::function<std::vector<std::string>(int)>& flags) {
    for (int i = 0; i < net_.workers(); ++i) {
      const std::string name = absl::StrCat("w", i + 1);
      std::vector<std::string> client = {e2e::Binary(), "client", "--server=" + endpoint};
      const std::vector<std::string> more = flags(i);
      client.insert(client.end(), more.begin(), more.end());
      client.push_back("--slots=1");
      client.push_back(absl::StrCat("--name=", name));
      ASSERT_TRUE(
          procs->Start(name, net_.InNamespace(net_.worker_ns(i), client), (tmp_ / name).string())
              .ok());
    }
  }

  e2e::NetNamespaces net_{{.prefix = "fedsim-mh-", .subnet = "10.77.0.0/24", .workers = 2}};
};

// "fedsim client: worker N: K tasks done" in a worker's stdout: K, or -1.
int TasksDone(const std::string& out) {
  static const std::regex re(R"(fedsim client: worker [0-9]+: ([0-9]+) tasks done)");
  std::smatch m;
  return std::regex_search(out, m, re) ? std::stoi(m[1]) : -1;
}

TEST_F(MultiHostE2ETest, ServerAndTwoWorkerHostsOverTlsGiveTheInProcessRun) {
  const std::string endpoint = net_.server_address() + ":" + kServerPort;
  const fs::path certs = tmp_ / "certs";
  ASSERT_NO_FATAL_FAILURE(MakeCerts(certs));
  ASSERT_NO_FATAL_FAILURE(e2e::RunInProcess("scenarios/quickstart.textproto", sets_, tmp_ / "ref"));

  // Written once, by the server's reader thread (the only one until the
  // workers start, after Notify), before Notify; read after.
  std::string listening_on;
  absl::Notification listening;
  SubprocessSet procs([&](const std::string& line) {
    if (listening.HasBeenNotified()) return;
    if (std::string a = e2e::ListenAddress(line); !a.empty()) {
      listening_on = std::move(a);
      listening.Notify();
    }
  });
  std::vector<std::string> server = {e2e::Binary(),
                                     "server",
                                     "--scenario=scenarios/quickstart.textproto",
                                     "--listen=" + endpoint,
                                     "--tls_cert=" + (certs / "server.pem").string(),
                                     "--tls_key=" + (certs / "server.key").string(),
                                     "--tls_ca=" + (certs / "ca.pem").string(),  // mutual TLS
                                     "--token_file=" + (certs / "token").string(),
                                     "--server_out=" + (tmp_ / "srv").string()};
  server.insert(server.end(), sets_.begin(), sets_.end());
  ASSERT_TRUE(procs.Start("server", net_.InNamespace(net_.server_ns(), server)).ok());
  ASSERT_TRUE(listening.WaitForNotificationWithTimeout(absl::Seconds(60)))
      << "the server never said it listens: " << procs.DescribeFailures();
  EXPECT_EQ(listening_on, endpoint);
  ASSERT_NO_FATAL_FAILURE(StartWorkers(&procs, endpoint, [&](int) {
    return std::vector<std::string>{"--tls_ca=" + (certs / "ca.pem").string(),
                                    "--tls_cert=" + (certs / "client.pem").string(),
                                    "--tls_key=" + (certs / "client.key").string(),
                                    "--token_file=" + (certs / "token").string()};
  }));
  procs.WaitAll(120);
  const auto children = procs.children();
  ASSERT_EQ(children.size(), 3u);
  for (const auto& c : children) {
    EXPECT_EQ(c.exit_code, 0) << c.name << ": " << procs.DescribeFailures();
    EXPECT_FALSE(c.killed_by_wait) << c.name << " outlived the run";
  }
  // Both hosts trained: the run did not fall to one of them.
  for (const char* w : {"w1", "w2"}) {
    const std::string out = ReadFile(tmp_ / w);
    EXPECT_GT(TasksDone(out), 0) << w << " did no task: " << out;
  }

  const fs::path run = tmp_ / "srv" / "quickstart";
  const std::string hash = ManifestField(tmp_ / "ref", "final_model_hash");
  ASSERT_EQ(hash.size(), 64u);
  EXPECT_EQ(ManifestField(run, "final_model_hash"), hash);
  const std::string metrics = ReadFile(tmp_ / "ref" / "metrics.csv");
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), '\n'), 10);  // header + versions 0..8
  EXPECT_EQ(ReadFile(run / "metrics.csv"), metrics);
  // Large files: say which differs, not their bytes.
  for (const char* f : {"events.jsonl", "final_model.bin"}) {
    EXPECT_TRUE(ReadFile(run / f) == ReadFile(tmp_ / "ref" / f)) << f << " differs";
  }
}

// A decentralized run across the hosts: the client models live on the two
// worker hosts, which serve them to each other on their own addresses
// (--peer_listen); the server only directs. The Peer service has no TLS, so
// this deployment uses the run token alone (--insecure on the server). The
// result must still be the in-process run's, bit for bit, and each host must
// have fetched neighbours' models from the other.
TEST_F(MultiHostE2ETest, DecentralizedRunPeerToPeerAcrossHostsGivesTheInProcessRun) {
  const std::string endpoint = net_.server_address() + ":" + kServerPort;
  const fs::path certs = tmp_ / "certs";
  ASSERT_NO_FATAL_FAILURE(MakeCerts(certs));
  const std::string scenario = "scenarios/dfedsam_fmnist.textproto";
  const std::vector<std::string> sets = {"--set=num_clients=8",
                                         "--set=dataset.fashion_mnist.train_limit=4000",
                                         "--set=dataset.fashion_mnist.test_limit=1000",
                                         "--set=stop.max_commits=4",
                                         "--set=eval.every_commits=2",
                                         "--set=eval.client_sample=3",
                                         "--set=algorithm.decentralized.variant=DFEDSAM_MGS",
                                         "--set=algorithm.decentralized.topology={ring{}}"};
  ASSERT_NO_FATAL_FAILURE(e2e::RunInProcess(scenario, sets, tmp_ / "ref"));

  absl::Notification listening;
  SubprocessSet procs([&](const std::string& line) {
    if (!listening.HasBeenNotified() && !e2e::ListenAddress(line).empty()) listening.Notify();
  });
  std::vector<std::string> server = {e2e::Binary(),
                                     "server",
                                     "--scenario=" + scenario,
                                     "--listen=" + endpoint,
                                     "--insecure",
                                     "--token_file=" + (certs / "token").string(),
                                     "--server_out=" + (tmp_ / "srv").string()};
  server.insert(server.end(), sets.begin(), sets.end());
  ASSERT_TRUE(procs.Start("server", net_.InNamespace(net_.server_ns(), server)).ok());
  ASSERT_TRUE(listening.WaitForNotificationWithTimeout(absl::Seconds(60)))
      << "the server never said it listens: " << procs.DescribeFailures();
  ASSERT_NO_FATAL_FAILURE(StartWorkers(&procs, endpoint, [&](int i) {
    return std::vector<std::string>{"--token_file=" + (certs / "token").string(),
                                    "--peer_listen=" + net_.worker_address(i) + ":7000"};
  }));
  procs.WaitAll(120);
  for (const auto& c : procs.children()) {
    EXPECT_EQ(c.exit_code, 0) << c.name << ": " << procs.DescribeFailures();
  }
  static const std::regex peers_re(R"(([0-9.]+) MB up, ([0-9.]+) MB from peers)");
  for (const char* w : {"w1", "w2"}) {
    const std::string out = ReadFile(tmp_ / w);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(out, m, peers_re)) << w << ": " << out;
    EXPECT_EQ(m[1].str(), "0.0") << w << " sent the server a model";
    EXPECT_GT(std::stod(m[2].str()), 0) << w << " fetched nothing from the other host";
  }
  const fs::path run = tmp_ / "srv" / "dfedsam_fmnist";
  EXPECT_EQ(ManifestField(run, "final_model_hash"),
            ManifestField(tmp_ / "ref", "final_model_hash"));
  EXPECT_EQ(ReadFile(run / "metrics.csv"), ReadFile(tmp_ / "ref" / "metrics.csv"));
  EXPECT_TRUE(ReadFile(run / "events.jsonl") == ReadFile(tmp_ / "ref" / "events.jsonl"));
}

}  // namespace
}  // namespace fedsim
