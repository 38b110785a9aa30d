// Helpers for the tests that drive the real `fedsim compare` and `fedsim
// report` (compare_e2e_test.cc, report_browser_test.cc): a temporary folder
// with small synthetic scenarios and a way to run the binary.
#ifndef FEDSIM_TESTS_COMPARE_TEST_UTIL_H_
#define FEDSIM_TESTS_COMPARE_TEST_UTIL_H_

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tools/subprocess.h"

#ifndef FEDSIM_BINARY
#error "FEDSIM_BINARY must name the fedsim executable"
#endif

namespace fedsim {

inline std::string ReadText(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The outcome of one command.
struct Ran {
  int code = -1;
  std::string err;  // the last stderr lines
  std::string out;  // stdout
};

// Runs `argv` (argv[0] the program) to completion; stdout goes through `out_file`.
inline Ran RunProgram(const std::vector<std::string>& argv, const std::filesystem::path& out_file,
                      double timeout_s = 300) {
  SubprocessSet set;
  std::filesystem::remove(out_file);
  auto started = set.Start("child", argv, out_file.string());
  EXPECT_TRUE(started.ok()) << started.status();
  set.WaitAll(timeout_s);
  Ran r;
  const SubprocessSet::Child c = set.children()[0];
  r.code = c.exit_code;
  for (const std::string& l : c.stderr_tail) r.err += l + "\n";
  r.out = ReadText(out_file);
  return r;
}

// A fast scenario on generated data (no files needed): 20 clients with
// lognormal device speeds and no jitter, each task one local epoch (so its
// duration depends on the client's data size and speed), Bernoulli
// participation redrawn every virtual second.
inline constexpr char kSmallBase[] = R"(
name: "small"
dataset { synthetic { alpha: 1 beta: 1 } }
partition { natural {} }
model { softmax {} }
num_clients: 20
devices { seconds_per_example { lognormal { mu: -5 sigma: 1 } } }
participation {
  bernoulli {}
  probability { distribution { constant: 0.7 } }
  round_s: 1
}
algorithm { fedavg { clients_per_round: 5 } }
local { epochs: 1 batch_size: 10 lr: 0.05 }
stop { max_virtual_s: 30 }
eval { every_commits: 0 every_virtual_s: 3 }
)";

// Two arms (sync FedAvg and FedBuff, so staleness is not all zero) x two seeds.
inline constexpr char kSmallComparison[] = R"(
scenario: "base.textproto"
seeds: [1, 2]
target { accuracy: 0.3 }
arms { name: "fedavg" }
arms {
  name: "fedbuff"
  set: ["algorithm.fedbuff.buffer_size=3", "algorithm.fedbuff.concurrency=6"]
}
)";

// A fresh folder named after the running test, with base.textproto and
// small.textproto (the comparison) in it.
inline std::filesystem::path MakeComparisonFolder(const std::string& tag) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("fedsim_" + tag + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "base.textproto") << kSmallBase;
  std::ofstream(dir / "small.textproto") << kSmallComparison;
  return dir;
}

}  // namespace fedsim

#endif  // FEDSIM_TESTS_COMPARE_TEST_UTIL_H_
