// The runs of a comparison: every arm x seed resolved to a scenario (so
// every mistake shows before anything runs), its folder, its scenario hash,
// and whether a finished run of exactly that scenario is already there.
//
// A comparison's folder, <out_dir>/<name>/:
//   comparison.json          the plan (arms, seeds, target, each run's folder,
//                            hash and command); `fedsim report` reads it
//   <arm>/seed-<S>/          each run's own folder (sim/run_output.h)
//   logs/<arm>.seed-<S>.log  each run's stdout and stderr
//   summary.csv, summary.md  compare/summary.h
//
// Each run is `fedsim run BASE --inprocess --run_dir=DIR --set=...` with the
// overrides of ArmOverrides (compare/comparison_file.h): running that command
// alone gives the same bits.
//
// Thread safety: pure functions, except InspectRun/ClearRun which touch the
// file system.
#ifndef FEDSIM_COMPARE_PLAN_H_
#define FEDSIM_COMPARE_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "compare/comparison_file.h"

namespace fedsim {

struct PlannedRun {
  int arm_index = 0;
  std::string arm;
  uint64_t seed = 0;
  // After the base scenario, in order (ArmOverrides).
  std::vector<std::string> overrides;
  std::string dir;       // <out>/<name>/<arm>/seed-<S>
  std::string log_path;  // <out>/<name>/logs/<arm>.seed-<S>.log
  // ScenarioHash of the resolved scenario; a finished run's manifest.json
  // must carry it to be reused.
  std::string scenario_hash;
  // The resolved scenario's stop conditions, for progress (0 = not used).
  uint64_t max_commits = 0;
  double max_virtual_s = 0;
  std::string algorithm;  // the rule's registry name ("fedbuff")
};

struct PlanOptions {
  // The command line's --set, applied to every arm after its own (and so
  // part of every run's scenario hash). Default: none.
  std::vector<std::string> overrides;
  // Replace the file's seeds. Default: empty = the file's.
  std::vector<uint64_t> seeds;
  // Replace the comparison's name (its folder). Default: "" = the file's.
  std::string name;
  // Replace the file's out_dir. Default: "" = the file's.
  std::string out_dir;
};

struct ComparisonPlan {
  ComparisonFile file;  // with `options` applied to spec (name, seeds, out_dir)
  std::vector<std::string> extra_overrides;  // PlanOptions::overrides
  std::string dir;                           // <out_dir>/<name>
  // Seed-major: every arm of the first seed, then of the second, ... so an
  // interrupted comparison has complete seeds first.
  std::vector<PlannedRun> runs;
};

// Resolves every arm x seed with LoadScenario(base, ArmOverrides(...)).
// InvalidArgument names each failing arm with its location in the file
// ("file:line:col: arm 'x': <the scenario's problems>"); an arm that fails
// for one seed is reported once.
absl::StatusOr<ComparisonPlan> PlanComparison(const ComparisonFile& file,
                                              const PlanOptions& options);

enum class RunState {
  kMissing,     // no folder
  kFinished,    // manifest.json with the planned hash and a complete run
  kStale,       // finished, but for another scenario (the file or --set changed)
  kUnfinished,  // a folder without manifest.json, or an interrupted run
};

struct RunInspection {
  RunState state = RunState::kMissing;
  std::string why;  // for kStale / kUnfinished: what was found
};

// What is in run.dir now.
RunInspection InspectRun(const PlannedRun& run);

// Removes run.dir (to redo the run). OK when it does not exist.
absl::Status ClearRun(const PlannedRun& run);

// `fedsim run` arguments for `run` (without the program name): the base
// scenario, --inprocess, --run_dir and one --set per override. `slots` and
// `eval_threads` only change speed, never results.
std::vector<std::string> RunArguments(const ComparisonPlan& plan, const PlannedRun& run, int slots,
                                      int eval_threads);

// A command a person can paste into a shell to run `run` alone
// ("fedsim run BASE --inprocess --run_dir=... '--set=...'").
std::string RunCommandLine(const ComparisonPlan& plan, const PlannedRun& run);

// The text of comparison.json (see the file comment).
std::string PlanJson(const ComparisonPlan& plan);

}  // namespace fedsim

#endif  // FEDSIM_COMPARE_PLAN_H_
