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
// The namespaces are deleted in TearDown, whether the test passed or not, and
// those of an earlier test process that was killed are deleted at SetUp.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <utility>
#include <vector>

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
using e2e::RunCommand;

constexpr char kNamespacePrefix[] = "fedsim-mh-";  // + pid + "-" + role
constexpr char kServerAddress[] = "10.77.0.1";
// The namespace is fresh and private, so a fixed port cannot collide.
constexpr char kServerEndpoint[] = "10.77.0.1:50051";

// The path of `name` in $PATH or the sbin folders (root's PATH may lack them
// under ctest); "" if absent.
std::string FindProgram(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::vector<std::string> dirs = absl::StrSplit(path ? path : "", ':', absl::SkipEmpty());
  for (const char* d : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) dirs.push_back(d);
  for (const std::string& d : dirs) {
    const fs::path p = fs::path(d) / name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

class MultiHostE2ETest : public e2e::E2EFixture {
 protected:
  // The quickstart, shortened to fit the test's time: 20,000 training images
  // over its 20 clients, 8 commits of 10 clients each.
  const std::vector<std::string> sets_ = {"--set=dataset.fashion_mnist.train_limit=20000",
                                          "--set=stop.max_commits=8"};

  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(e2e::E2EFixture::SetUp());
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root to create network namespaces (running as uid " << geteuid()
                   << ")";
    }
    ip_ = FindProgram("ip");
    if (ip_.empty()) GTEST_SKIP() << "`ip` (package iproute2) is not installed";
    DeleteStaleNamespaces();
    const std::string stem = kNamespacePrefix + std::to_string(getpid()) + "-";
    server_ns_ = stem + "srv";
    worker_ns_ = {stem + "w1", stem + "w2"};
    // Named before they exist, so TearDown deletes whatever part was made.
    created_ = {server_ns_, worker_ns_[0], worker_ns_[1]};
    std::string err;
    if (Ip({"netns", "add", server_ns_}, &err) != 0) {
      created_.clear();
      GTEST_SKIP() << "`ip netns` is unavailable here: " << err;
    }
    ASSERT_NO_FATAL_FAILURE(BuildNetwork());
  }

  void TearDown() override {
    for (const std::string& ns : created_) {
      std::string err;
      // The only failure that matters is a namespace left behind.
      if (Ip({"netns", "delete", ns}, &err) != 0 && fs::exists("/run/netns/" + ns)) {
        ADD_FAILURE() << "could not delete network namespace " << ns << ": " << err;
      }
    }
    e2e::E2EFixture::TearDown();
  }

  int Ip(const std::vector<std::string>& args, std::string* err) {
    std::vector<std::string> argv = {ip_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, err, 30);
  }

  // REQUIRES: the namespace `ns` exists.
  void IpIn(const std::string& ns, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"-n", ns};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string err;
    ASSERT_EQ(Ip(argv, &err), 0) << "ip " << absl::StrJoin(argv, " ") << ": " << err;
  }

  // The bridge in the server's namespace, a veth pair to each worker's.
  void BuildNetwork() {
    for (const std::string& ns : worker_ns_) {
      std::string err;
      ASSERT_EQ(Ip({"netns", "add", ns}, &err), 0) << err;
    }
    IpIn(server_ns_, {"link", "set", "lo", "up"});
    IpIn(server_ns_, {"link", "add", "br0", "type", "bridge"});
    IpIn(server_ns_, {"addr", "add", std::string(kServerAddress) + "/24", "dev", "br0"});
    IpIn(server_ns_, {"link", "set", "br0", "up"});
    for (size_t i = 0; i < worker_ns_.size(); ++i) {
      const std::string& ns = worker_ns_[i];
      const std::string port = "w" + std::to_string(i + 1);
      const std::string address = "10.77.0." + std::to_string(i + 2) + "/24";
      IpIn(server_ns_, {"link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns});
      IpIn(server_ns_, {"link", "set", port, "master", "br0"});
      IpIn(server_ns_, {"link", "set", port, "up"});
      IpIn(ns, {"link", "set", "lo", "up"});
      IpIn(ns, {"addr", "add", address, "dev", "eth0"});
      IpIn(ns, {"link", "set", "eth0", "up"});
    }
  }

  // Namespaces of this test whose process is gone (killed by a ctest timeout,
  // say, before its TearDown).
  void DeleteStaleNamespaces() {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/run/netns", ec)) {
      static const std::regex re(std::string("^") + kNamespacePrefix + "([0-9]+)-");
      const std::string name = entry.path().filename();
      std::smatch m;
      if (!std::regex_search(name, m, re)) continue;
      const pid_t owner = static_cast<pid_t>(std::stol(m[1]));
      if (owner == getpid() || kill(owner, 0) == 0 || errno != ESRCH) continue;
      std::string err;
      Ip({"netns", "delete", name}, &err);
    }
  }

  // `ip netns exec NS FEDSIM_BINARY ARGS...`: exec, no fork, so the pid and
  // signals are fedsim's own.
  std::vector<std::string> InNamespace(const std::string& ns,
                                       const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {ip_, "netns", "exec", ns, FEDSIM_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  std::string ip_;
  std::string server_ns_;
  std::vector<std::string> worker_ns_;
  std::vector<std::string> created_;
};

// "fedsim client: worker N: K tasks done" in a worker's stdout: K, or -1.
int TasksDone(const std::string& out) {
  static const std::regex re(R"(fedsim client: worker [0-9]+: ([0-9]+) tasks done)");
  std::smatch m;
  return std::regex_search(out, m, re) ? std::stoi(m[1]) : -1;
}

TEST_F(MultiHostE2ETest, ServerAndTwoWorkerHostsOverTlsGiveTheInProcessRun) {
  const fs::path certs = tmp_ / "certs";
  {
    std::string err;
    ASSERT_EQ(RunCommand({"/bin/bash", "scripts/make-test-certs", certs.string(), kServerAddress},
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
  std::vector<std::string> server = {"server",
                                     "--scenario=scenarios/quickstart.textproto",
                                     std::string("--listen=") + kServerEndpoint,
                                     "--tls_cert=" + (certs / "server.pem").string(),
                                     "--tls_key=" + (certs / "server.key").string(),
                                     "--tls_ca=" + (certs / "ca.pem").string(),  // mutual TLS
                                     "--token_file=" + (certs / "token").string(),
                                     "--server_out=" + (tmp_ / "srv").string()};
  server.insert(server.end(), sets_.begin(), sets_.end());
  ASSERT_TRUE(procs.Start("server", InNamespace(server_ns_, server)).ok());
  ASSERT_TRUE(listening.WaitForNotificationWithTimeout(absl::Seconds(60)))
      << "the server never said it listens: " << procs.DescribeFailures();
  EXPECT_EQ(listening_on, kServerEndpoint);
  for (size_t i = 0; i < worker_ns_.size(); ++i) {
    const std::string name = "w" + std::to_string(i + 1);
    const std::vector<std::string> client = {"client",
                                             std::string("--server=") + kServerEndpoint,
                                             "--tls_ca=" + (certs / "ca.pem").string(),
                                             "--tls_cert=" + (certs / "client.pem").string(),
                                             "--tls_key=" + (certs / "client.key").string(),
                                             "--token_file=" + (certs / "token").string(),
                                             "--slots=1",
                                             "--name=" + name};
    ASSERT_TRUE(procs.Start(name, InNamespace(worker_ns_[i], client), (tmp_ / name).string()).ok());
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
