// Hosts of an end-to-end test as Linux network namespaces: a "server"
// namespace with a bridge, and N worker namespaces, each joined to the
// bridge by a veth pair:
//
//   PREFIX PID-w1  eth0 A.B.C.2   --veth-- w1 -+
//                                              br0 A.B.C.1  PREFIX PID-srv
//   PREFIX PID-wN  eth0 A.B.C.N+1 --veth-- wN -+
//
// (PREFIX e.g. "fedsim-mh-", so "fedsim-mh-4711-w1").
//
// A worker's namespace has only its loopback and that veth, so every byte it
// trades with the server crosses the link. Interface names live inside the
// namespaces, so tests only need distinct prefixes to run side by side; they
// also take distinct subnets so that no two can ever be confused in a
// capture or a log.
//
// Use from a gtest fixture:
//
//   NetNamespaces net_{{.prefix = "fedsim-xy-", .subnet = "10.79.0.0/24", .workers = 2}};
//   void SetUp() override {
//     std::string why;
//     ASSERT_NO_FATAL_FAILURE(net_.Create(&why));
//     if (!why.empty()) GTEST_SKIP() << why;  // or fall back to loopback
//   }
//   void TearDown() override { net_.Destroy(); }
//
// Needs root and `ip netns` (iproute2); Create says which is missing. The
// namespaces of an earlier test process with the same prefix that was killed
// before its TearDown are deleted by Create.
#ifndef FEDSIM_TESTS_NETNS_FIXTURE_H_
#define FEDSIM_TESTS_NETNS_FIXTURE_H_

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/e2e_util.h"

namespace fedsim::e2e {

// The path of `name` in $PATH or the sbin folders (root's PATH may lack them
// under ctest); "" if absent.
inline std::string FindProgram(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::vector<std::string> dirs = absl::StrSplit(path ? path : "", ':', absl::SkipEmpty());
  for (const char* d : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) dirs.push_back(d);
  for (const std::string& d : dirs) {
    const std::filesystem::path p = std::filesystem::path(d) / name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

class NetNamespaces {
 public:
  struct Options {
    // Starts every namespace's name, then the pid and "-": the key by which
    // Create finds the namespaces of a dead test process. Unique per test;
    // [a-z0-9-] only.
    std::string prefix;
    // A /24, "A.B.C.0/24": the server is A.B.C.1, worker i (0-based) A.B.C.(i+2).
    std::string subnet;
    int workers = 1;
  };

  explicit NetNamespaces(Options options) : options_(std::move(options)) {}
  ~NetNamespaces() { Destroy(); }
  NetNamespaces(const NetNamespaces&) = delete;
  NetNamespaces& operator=(const NetNamespaces&) = delete;

  // Creates the namespaces and the network. When the machine cannot have
  // them (not root, no `ip`, no netns support), sets *unavailable to why and
  // creates nothing; a failure while building the network is a fatal test
  // failure (call under ASSERT_NO_FATAL_FAILURE).
  void Create(std::string* unavailable) {
    unavailable->clear();
    ASSERT_TRUE(std::regex_match(options_.prefix, std::regex("[a-z0-9-]+")) &&
                absl::EndsWith(options_.subnet, ".0/24") && options_.workers >= 1 &&
                options_.workers <= 250)
        << "NetNamespaces wants a prefix of [a-z0-9-], a subnet A.B.C.0/24 and 1..250 workers, "
        << "not '" << options_.prefix << "', " << options_.subnet << " and " << options_.workers;
    base_ = options_.subnet.substr(0, options_.subnet.size() - std::string("0/24").size());
    if (geteuid() != 0) {
      *unavailable =
          "network namespaces need root (running as uid " + std::to_string(geteuid()) + ")";
      return;
    }
    ip_ = FindProgram("ip");
    if (ip_.empty()) {
      *unavailable = "`ip` (package iproute2) is not installed";
      return;
    }
    DeleteStaleNamespaces();
    const std::string stem = options_.prefix + std::to_string(getpid()) + "-";
    server_ns_ = stem + "srv";
    worker_ns_.clear();
    for (int i = 1; i <= options_.workers; ++i)
      worker_ns_.push_back(stem + "w" + std::to_string(i));
    std::string err;
    if (Ip({"netns", "add", server_ns_}, &err) != 0) {
      *unavailable = "`ip netns` is unavailable here: " + err;
      return;
    }
    // Named before they exist, so Destroy deletes whatever part was made.
    created_ = {server_ns_};
    created_.insert(created_.end(), worker_ns_.begin(), worker_ns_.end());
    ASSERT_NO_FATAL_FAILURE(BuildNetwork());
  }

  // Deletes what Create made; a namespace left behind is a test failure.
  // Safe to call more than once.
  void Destroy() {
    for (const std::string& ns : created_) {
      std::string err;
      // The only failure that matters is a namespace left behind.
      if (Ip({"netns", "delete", ns}, &err) != 0 && std::filesystem::exists("/run/netns/" + ns)) {
        ADD_FAILURE() << "could not delete network namespace " << ns << ": " << err
                      << " (delete it with `ip netns delete " << ns << "`)";
      }
    }
    created_.clear();
  }

  const std::string& server_ns() const { return server_ns_; }
  const std::string& worker_ns(int i) const { return worker_ns_.at(i); }
  int workers() const { return options_.workers; }
  // The server's address on the bridge, reachable from every worker namespace.
  std::string server_address() const { return base_ + "1"; }
  std::string worker_address(int i) const { return base_ + std::to_string(i + 2); }

  // `ip netns exec NS ARGV...`: ip execs ARGV, no fork, so the pid and the
  // signals a SubprocessSet sends are ARGV[0]'s own.
  std::vector<std::string> InNamespace(const std::string& ns,
                                       const std::vector<std::string>& argv) const {
    std::vector<std::string> out = {ip_, "netns", "exec", ns};
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }

 private:
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
    IpIn(server_ns_, {"addr", "add", server_address() + "/24", "dev", "br0"});
    IpIn(server_ns_, {"link", "set", "br0", "up"});
    for (int i = 0; i < options_.workers; ++i) {
      const std::string& ns = worker_ns_[i];
      const std::string port = "w" + std::to_string(i + 1);
      IpIn(server_ns_, {"link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns});
      IpIn(server_ns_, {"link", "set", port, "master", "br0"});
      IpIn(server_ns_, {"link", "set", port, "up"});
      IpIn(ns, {"link", "set", "lo", "up"});
      IpIn(ns, {"addr", "add", worker_address(i) + "/24", "dev", "eth0"});
      IpIn(ns, {"link", "set", "eth0", "up"});
    }
  }

  // Namespaces with this prefix whose process is gone (killed by a ctest
  // timeout, say, before its TearDown).
  void DeleteStaleNamespaces() {
    std::error_code ec;
    // Create checked that the prefix holds no regex metacharacters.
    const std::regex re("^" + options_.prefix + "([0-9]+)-");
    for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
      const std::string name = entry.path().filename();
      std::smatch m;
      if (!std::regex_search(name, m, re)) continue;
      const pid_t owner = static_cast<pid_t>(std::stol(m[1]));
      if (owner == getpid() || kill(owner, 0) == 0 || errno != ESRCH) continue;
      std::string err;
      Ip({"netns", "delete", name}, &err);
    }
  }

  Options options_;
  std::string base_;  // "A.B.C."
  std::string ip_;
  std::string server_ns_;
  std::vector<std::string> worker_ns_;
  std::vector<std::string> created_;
};

}  // namespace fedsim::e2e

#endif  // FEDSIM_TESTS_NETNS_FIXTURE_H_
