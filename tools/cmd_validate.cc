// fedsim validate FILE [--set path=value ...] [--check_data]
//
// Checks a scenario file (syntax, --set overrides, semantic rules, the memory
// budget) and prints the resolved scenario, every default filled in, to
// stdout, followed by the model's parameter count and the server memory the
// run plans for (config/memory.h) as `#` comments, so stdout stays a valid
// scenario file. Errors go to stderr, every one of them, each naming
// file:line:col. Exit codes: 0 valid, 1 invalid, 2 usage error.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "config/memory.h"
#include "config/scenario_file.h"
#include "config/validate.h"
#include "ml/model.h"
#include "sim/devices.h"
#include "runtime/run_setup.h"
#include "tools/commands.h"
#include "tools/common_flags.h"

ABSL_FLAG(bool, check_data, false,
          "Also load the dataset, partition it and draw the device profiles (the checks that "
          "need data), and print per-client statistics as comments after the scenario.");

namespace fedsim {
namespace {

struct Summary {
  double min = 0, median = 0, mean = 0, max = 0;
};

template <typename T>
Summary Summarize(std::vector<T> v) {
  Summary s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  double sum = 0;
  for (const T& x : v) sum += static_cast<double>(x);
  s.min = static_cast<double>(v.front());
  s.max = static_cast<double>(v.back());
  s.median = static_cast<double>(v[v.size() / 2]);
  s.mean = sum / static_cast<double>(v.size());
  return s;
}

std::string Line(const char* what, const Summary& s) {
  char buf[200];
  std::snprintf(buf, sizeof(buf), "# %-22s min %-10.4g median %-10.4g mean %-10.4g max %.4g\n",
                what, s.min, s.median, s.mean, s.max);
  return buf;
}

// The --check_data report, as text-format comments so stdout stays a valid
// scenario file.
int CheckData(const config::Scenario& scenario, const std::string& path) {
  const std::string dir = ScenarioDir(path);
  absl::StatusOr<RunData> data = BuildRunData(scenario, dir);
  if (!data.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), std::string(data.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::vector<DeviceProfile>> devices = BuildDeviceProfiles(scenario, dir);
  if (!devices.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), std::string(devices.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<Model>> model = NewModel(data->model);
  if (!model.ok()) {
    std::fprintf(stderr, "%s: model: %s\n", path.c_str(),
                 std::string(model.status().message()).c_str());
    return 1;
  }
  const uint64_t model_bytes = (*model)->NumParams() * sizeof(float);

  std::vector<size_t> sizes;
  std::vector<double> max_class_share, task_seconds;
  uint64_t train_rows = 0;
  for (uint32_t i = 0; i < data->num_clients(); ++i) {
    sizes.push_back(data->client_rows[i]);
    train_rows += data->client_rows[i];
    absl::StatusOr<std::vector<double>> dist = ClientLabelDistribution(*data, i);
    if (!dist.ok()) {
      std::fprintf(stderr, "%s: %s\n", path.c_str(), std::string(dist.status().message()).c_str());
      return 1;
    }
    max_class_share.push_back(dist->empty() ? 0.0 : *std::max_element(dist->begin(), dist->end()));
    task_seconds.push_back(
        ExpectedTaskSeconds((*devices)[i], data->examples_per_task[i], model_bytes));
  }
  std::string out = "\n# --check_data\n";
  // Generated clients have no shared training set: their rows add up.
  if (data->train != nullptr) train_rows = data->train->size();
  absl::StrAppend(&out, "# train rows ", train_rows, ", test rows ", data->test->size(),
                  ", clients ", data->num_clients(), "\n");
  absl::StrAppend(&out, "# model ", data->model.ToString(), ": ", (*model)->NumParams(),
                  " parameters (", model_bytes, " bytes)\n");
  absl::StrAppend(&out, Line("rows per client", Summarize(sizes)));
  absl::StrAppend(&out, Line("largest class share", Summarize(max_class_share)));
  absl::StrAppend(&out, Line("expected task seconds", Summarize(task_seconds)));
  std::fputs(out.c_str(), stdout);
  return 0;
}

// Every --set value on the command line, split at commas (ApplyOverrides
// joins back the pieces of one value). Abseil keeps only the last occurrence
// of a repeated flag, but --set is documented as repeatable, so the command
// line is read here; the flag's own value is the fallback (e.g. --flagfile).

}  // namespace

int ValidateMain(int argc, char** argv) {
  const std::vector<std::string> overrides = ScenarioOverrides(argc, argv);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::fprintf(stderr,
                 "usage: fedsim validate SCENARIO.textproto [--set=field=value ...] "
                 "[--check_data]\n%s\n",
                 args.size() < 2 ? "missing the scenario file" : "give exactly one scenario file");
    return 2;
  }
  const std::string path = args[1];
  absl::StatusOr<config::Scenario> scenario = LoadScenario(path, overrides);
  if (!scenario.ok()) {
    std::fprintf(stderr, "%s\n", std::string(scenario.status().message()).c_str());
    return 1;
  }
  std::string out = absl::StrCat("# ", path, " resolved by fedsim validate; scenario hash ",
                                 ScenarioHash(*scenario), "\n", ScenarioToText(*scenario));
  absl::StatusOr<MemoryEstimate> memory = EstimateMemory(*scenario);
  if (!memory.ok()) {  // validation passed, so this is a bug, not the user's mistake
    std::fprintf(stderr, "%s: memory estimate: %s\n", path.c_str(),
                 std::string(memory.status().message()).c_str());
    return 1;
  }
  absl::StrAppend(&out, "\n");
  for (const std::string& line : DescribeMemory(*memory)) absl::StrAppend(&out, "# ", line, "\n");
  for (const std::string& line : AlgorithmNotesFor(*scenario, ScenarioDir(path))) {
    absl::StrAppend(&out, "# ", line, "\n");
  }
  std::fputs(out.c_str(), stdout);
  if (absl::GetFlag(FLAGS_check_data)) return CheckData(*scenario, path);
  return 0;
}

}  // namespace fedsim
