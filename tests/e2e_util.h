// Helpers of the end-to-end tests (the real `fedsim` binary, FEDSIM_BINARY).
#ifndef FEDSIM_TESTS_E2E_UTIL_H_
#define FEDSIM_TESTS_E2E_UTIL_H_

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tools/subprocess.h"

#ifndef FEDSIM_BINARY
#error "FEDSIM_BINARY must name the fedsim executable"
#endif

namespace fedsim::e2e {

// The fedsim executable: $FEDSIM_E2E_BINARY when set (a prebuilt bundle run
// elsewhere, scripts/gpu-check --prebuilt), else the build's FEDSIM_BINARY.
inline std::string Binary() {
  const char* env = std::getenv("FEDSIM_E2E_BINARY");
  return env != nullptr && *env != '\0' ? env : FEDSIM_BINARY;
}

inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A top-level field of a run folder's manifest.json, as text ("" if absent).
inline std::string ManifestField(const std::filesystem::path& dir, const std::string& key) {
  std::string m = ReadFile(dir / "manifest.json");
  std::smatch match;
  // One key per line ("key": value or "key": "value"); a value may hold commas.
  std::regex re("\"" + key + "\": \"?([^\"\n]*?)\"?,?\n");
  if (!std::regex_search(m, match, re)) return "";
  return match[1];
}

// Runs ARGV (argv[0] a path, not searched in $PATH) to completion, at most
// timeout_s; returns its exit code (127 when it could not be started), its
// last stderr lines appended to *err.
inline int RunCommand(const std::vector<std::string>& argv, std::string* err = nullptr,
                      double timeout_s = 600) {
  SubprocessSet set;
  auto started = set.Start(argv[0], argv);
  if (!started.ok()) {
    if (err) *err += std::string(started.status().message()) + "\n";
    return 127;
  }
  set.WaitAll(timeout_s);
  auto c = set.children()[0];
  if (err) {
    for (auto& l : c.stderr_tail) *err += l + "\n";
  }
  return c.exit_code;
}

// Runs `fedsim ARGS...` to completion (at most 600 s); returns its exit code,
// its last stderr lines in *err.
inline int RunFedsim(const std::vector<std::string>& args, std::string* err = nullptr) {
  std::vector<std::string> argv = {Binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string start_error;
  const int code = RunCommand(argv, err ? err : &start_error);
  EXPECT_NE(code, 127) << "cannot start " << Binary();
  return code;
}

// Runs `fedsim run SCENARIO --inprocess --run_dir=RUN_DIR SETS...`: the
// undisturbed in-process run that a distributed one must equal. A non-zero
// exit is a fatal failure (call it under ASSERT_NO_FATAL_FAILURE).
inline void RunInProcess(const std::string& scenario, const std::vector<std::string>& sets,
                         const std::filesystem::path& run_dir) {
  std::vector<std::string> args = {"run", scenario, "--inprocess", "--run_dir=" + run_dir.string()};
  args.insert(args.end(), sets.begin(), sets.end());
  std::string err;
  ASSERT_EQ(RunFedsim(args, &err), 0) << err;
}

// The HOST:PORT of a `fedsim server` "listening on HOST:PORT" line of the
// child named `child`, as a SubprocessSet passes lines on ("[child] ...");
// "" for any other line.
inline std::string ListenAddress(const std::string& line, const std::string& child = "server") {
  static const std::regex re(R"(^\[([^\]]+)\] .*listening on ([0-9.]+:[0-9]+))");
  std::smatch m;
  if (!std::regex_search(line, m, re) || m[1] != child) return "";
  return m[2];
}

// A fresh folder for the running test, removed when it passes.
class E2EFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"))
        << "Fashion-MNIST is missing: run scripts/install-deps (package dataset-fashion-mnist)";
    tmp_ = std::filesystem::temp_directory_path() /
           ("fedsim_e2e_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(tmp_);
    std::filesystem::create_directories(tmp_);
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(tmp_);
  }
  std::filesystem::path tmp_;
};

}  // namespace fedsim::e2e

#endif  // FEDSIM_TESTS_E2E_UTIL_H_
