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
#include <regex>
#include <string>
#include <utility>
#include <vector>

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
  {
    std::string err;
    ASSERT_EQ(
        RunCommand({"/bin/bash", "scripts/make-test-certs", certs.string(), net_.server_address()},
                   &err, 60),
        0)
        << err;
  }
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
  for (int i = 0; i < net_.workers(); ++i) {
    const std::string name = "w" + std::to_string(i + 1);
    const std::vector<std::string> client = {e2e::Binary(),
                                             "client",
                                             "--server=" + endpoint,
                                             "--tls_ca=" + (certs / "ca.pem").string(),
                                             "--tls_cert=" + (certs / "client.pem").string(),
                                             "--tls_key=" + (certs / "client.key").string(),
                                             "--token_file=" + (certs / "token").string(),
                                             "--slots=1",
                                             "--name=" + name};
    ASSERT_TRUE(
        procs.Start(name, net_.InNamespace(net_.worker_ns(i), client), (tmp_ / name).string())
            .ok());
  }
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

}  // namespace
}  // namespace fedsim
