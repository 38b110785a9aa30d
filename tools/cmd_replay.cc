// fedsim replay runs/NAME: re-runs a recorded run in this process with every
// task's duration taken from its events.jsonl, and checks that the replay
// produces the same events and the same final model (sha256 in manifest.json);
// first, that the run's final_model.bin is the model the manifest names.
// Exit codes: 0 match, 1 mismatch, diverged or failed, 2 usage error.
#include <cstdio>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "sim/replay.h"
#include "sim/run_output.h"
#include "tools/commands.h"
#include "tools/common_flags.h"
#include "util/hash.h"

// Defined in cmd_run.cc and cmd_client.cc (flags are process-global); the
// same meaning here. Listed in kHelp below.
ABSL_DECLARE_FLAG(std::string, out);
ABSL_DECLARE_FLAG(std::string, scenario_dir);

namespace fedsim {
namespace {

constexpr char kHelp[] =
    "fedsim replay: re-run a recorded run from its event log and check its final model.\n"
    "\n"
    "usage: fedsim replay runs/NAME [--out=DIR] [--scenario_dir=DIR] [--set=FIELD=VALUE]\n"
    "\n"
    "Reads runs/NAME/scenario.textproto, events.jsonl and manifest.json, runs the scenario\n"
    "again in this process (one training thread per core), giving each task the duration\n"
    "recorded in its dispatch event instead of drawing one from the device model, and\n"
    "writes the replay as a new run folder under --out (default: replays/ next to the run,\n"
    "e.g. runs/replays/NAME). Then compares the two event logs line by line, as JSON\n"
    "values (every number exactly; spacing, key order and line ends do not matter), and\n"
    "the final model's sha256 with the manifest's final_model_hash. Before all that, the\n"
    "run's own final_model.bin must have that sha256, else 'MISMATCH' and exit 1.\n"
    "\n"
    "Prints 'replay of runs/NAME: MATCH (final model sha256 ...)' and exits 0, or\n"
    "'DIVERGED at event N' with the recorded and the replayed line (N = line of\n"
    "events.jsonl) and exits 1. A replay that dispatches a task to a client the log does\n"
    "not have stops there and is reported as that divergence. Exit 2: usage error.\n"
    "\n"
    "A wall-clock run (a deployment) is replayed in simulation: on the virtual clock, each\n"
    "task taking its real recorded duration, its clients available when they were\n"
    "connected; its events are compared without times, durations and evaluation figures.\n"
    "\n"
    "flags:\n"
    "  --out=DIR           folder for the replay's run folder\n"
    "  --scenario_dir=DIR  base for relative paths in the scenario (default .)\n"
    "  --set=FIELD=VALUE   change the recorded scenario first, e.g. where its data is when\n"
    "                      the run's server held none: --set=dataset.fashion_mnist.dir=DIR\n"
    "                      (other changes usually make the replay diverge)\n";

std::string Parent(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  const size_t slash = p.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

}  // namespace

int ReplayMain(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0 ||
        std::strcmp(argv[i], "-help") == 0) {
      std::fputs(kHelp, stdout);
      return 0;
    }
  }
  const std::vector<std::string> overrides = ScenarioOverrides(argc, argv);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::fprintf(stderr,
                 "usage: fedsim replay runs/NAME [--out=DIR] [--scenario_dir=DIR] "
                 "[--set=FIELD=VALUE]\n"
                 "(see 'fedsim replay --help')\n");
    return 2;
  }
  std::string run_dir = args[1];
  while (run_dir.size() > 1 && run_dir.back() == '/') run_dir.pop_back();

  absl::StatusOr<RecordedRun> recorded = LoadRecordedRun(run_dir, overrides);
  if (!recorded.ok()) {
    std::fprintf(stderr, "fedsim replay: %s\n", std::string(recorded.status().message()).c_str());
    return 1;
  }
  // The saved model must be the one the manifest names: a replay that only
  // recomputes the hash would call an altered or truncated file a MATCH.
  const std::string model_path = run_dir + "/final_model.bin";
  absl::StatusOr<std::vector<float>> saved = ReadFinalModel(model_path, nullptr);
  const std::string saved_hash = saved.ok() ? Sha256Hex(std::span<const float>(*saved)) : "";
  if (saved_hash != recorded->final_model_hash) {
    std::printf("replay of %s: MISMATCH: %s %s\n  manifest final_model_hash %s\n", run_dir.c_str(),
                model_path.c_str(),
                saved.ok() ? absl::StrCat("has sha256 ", saved_hash).c_str()
                           : absl::StrCat("cannot be read: ", saved.status().message()).c_str(),
                recorded->final_model_hash.c_str());
    return 1;
  }
  recorded->scenario_dir = absl::GetFlag(FLAGS_scenario_dir);
  std::string out_dir = absl::GetFlag(FLAGS_out);
  if (out_dir.empty()) out_dir = Parent(run_dir) + "/replays";
  std::fprintf(stderr, "fedsim replay: %s, %zu recorded events, replaying into %s/\n",
               run_dir.c_str(), recorded->events.size(), out_dir.c_str());

  absl::StatusOr<ReplayReport> report = ReplayRun(*recorded, out_dir);
  if (!report.ok()) {
    std::fprintf(stderr, "fedsim replay: %s\n", std::string(report.status().message()).c_str());
    return 1;
  }
  if (report->match) {
    std::printf("replay of %s: MATCH (final model sha256 %s)\nreplay in %s\n", run_dir.c_str(),
                report->replayed_hash.c_str(), report->replay_dir.c_str());
    return 0;
  }
  std::printf("replay of %s: ", run_dir.c_str());
  if (report->diverged_line > 0) {
    std::printf("DIVERGED at event %zu:\n  recorded: %s\n  replayed: %s\n", report->diverged_line,
                report->recorded_line.empty() ? "(end of log)" : report->recorded_line.c_str(),
                report->replayed_line.empty() ? "(end of log)" : report->replayed_line.c_str());
  } else {
    std::printf("DIVERGED in the final model:\n");
  }
  if (!report->note.empty()) std::printf("  (%s)\n", report->note.c_str());
  std::printf("  final model sha256: recorded %s, replayed %s\nreplay in %s\n",
              report->recorded_hash.c_str(),
              report->replayed_hash.empty() ? "-" : report->replayed_hash.c_str(),
              report->replay_dir.c_str());
  return 1;
}

}  // namespace fedsim
