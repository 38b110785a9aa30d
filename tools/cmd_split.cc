// fedsim split SCENARIO --out=DIR [--set ...] [--force]
//
// Writes each simulated client's data as its own client folder (training
// split and a test split; data/client_folder.h has the format, and
// runtime/client_split.h how the test set is shared), so that the data a
// simulation used can be handed to deployed clients (`fedsim client
// --data=DIR/client-0003`). Exit codes: 0 written, 1 failed, 2 usage error.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "config/scenario_file.h"
#include "runtime/client_split.h"
#include "runtime/run_setup.h"
#include "tools/commands.h"
#include "tools/common_flags.h"

// --out is `fedsim run`'s flag and --force `fedsim compare`'s (one binary:
// a flag name is defined once); main.cc's usage line explains them for split.
ABSL_DECLARE_FLAG(std::string, out);
ABSL_DECLARE_FLAG(bool, force);

namespace fedsim {

int SplitMain(int argc, char** argv) {
  const std::vector<std::string> overrides = ScenarioOverrides(argc, argv);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string out = absl::GetFlag(FLAGS_out);
  if (args.size() != 2 || out.empty()) {
    std::fprintf(stderr,
                 "usage: fedsim split SCENARIO.textproto --out=DIR [--set=field=value ...] "
                 "[--force]\n%s\n",
                 args.size() < 2   ? "missing the scenario file"
                 : args.size() > 2 ? "give exactly one scenario file"
                                   : "missing --out: the folder to write the clients' data into");
    return 2;
  }
  const std::string path = args[1];
  std::error_code ec;
  if (std::filesystem::exists(out, ec) && !std::filesystem::is_directory(out, ec)) {
    std::fprintf(stderr, "fedsim split: --out=%s is a file, not a folder\n", out.c_str());
    return 1;
  }
  if (std::filesystem::is_directory(out, ec) && !std::filesystem::is_empty(out, ec) &&
      !absl::GetFlag(FLAGS_force)) {
    std::fprintf(stderr,
                 "fedsim split: %s already holds files; choose an empty or new folder, or add "
                 "--force to replace the client folders in it\n",
                 out.c_str());
    return 1;
  }
  absl::StatusOr<config::Scenario> scenario = LoadScenario(path, overrides);
  if (!scenario.ok()) {
    std::fprintf(stderr, "%s\n", std::string(scenario.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<RunData> data = BuildRunData(*scenario, ScenarioDir(path));
  if (!data.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), std::string(data.status().message()).c_str());
    return 1;
  }
  const bool terminal = isatty(2);
  auto last = std::chrono::steady_clock::now();
  auto progress = [&](size_t done, size_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (done < total && now - last < std::chrono::seconds(1)) return;
    last = now;
    std::fprintf(stderr, "%sfedsim split: %zu/%zu clients written%s", terminal ? "\r" : "", done,
                 total, terminal && done < total ? "" : "\n");
  };
  absl::StatusOr<std::vector<SplitClient>> split =
      SplitClients(*scenario, ScenarioHash(*scenario), *data, out, progress);
  if (!split.ok()) {
    std::fprintf(stderr, "\nfedsim split: %s\n", std::string(split.status().message()).c_str());
    return 1;
  }
  uint64_t train = 0, test = 0;
  for (const SplitClient& c : *split) {
    train += c.train_rows;
    test += c.test_rows;
  }
  std::printf(
      "wrote %zu client folders to %s (%llu training and %llu test examples); "
      "the list is %s/index.csv\n"
      "serve one with: fedsim client --server=HOST:PORT --data=%s/%s\n",
      split->size(), out.c_str(), static_cast<unsigned long long>(train),
      static_cast<unsigned long long>(test), out.c_str(), out.c_str(), split->front().name.c_str());
  return 0;
}

}  // namespace fedsim
