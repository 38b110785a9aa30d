// What `fedsim report` reads: a run folder (sim/run_output.h) or a
// comparison folder (compare/plan.h: comparison.json and the runs' folders),
// loaded into one shape, arms x seeds (a single run is one arm, one seed).
//
// Thread safety: pure functions over the file system; the structs are values.
#ifndef FEDSIM_REPORT_REPORT_INPUT_H_
#define FEDSIM_REPORT_REPORT_INPUT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "compare/run_files.h"

namespace fedsim {

struct ReportRun {
  std::string arm;
  uint64_t seed = 0;
  std::string dir;
  RunManifest manifest;
  MetricsTable metrics;
  uint32_t num_clients = 0;   // from the run's scenario.textproto (0 = unknown)
  std::string scenario_text;  // the run's resolved scenario.textproto
};

struct ReportInput {
  bool is_comparison = false;
  std::string dir;    // as given
  std::string title;  // the comparison's or the scenario's name
  // Arms in the comparison's order; one for a single run.
  std::vector<std::string> arms;
  std::vector<std::string> arm_notes;  // same length as arms
  std::vector<std::string> arm_sets;   // "--set=a --set=b", same length
  std::vector<ReportRun> runs;         // finished runs, arm-major, seeds ascending
  // Planned runs that are not (yet) there: "fedfix seed 2".
  std::vector<std::string> missing;
  // Comparison only: the base scenario, the target ("test_accuracy >= 0.8"
  // or ""), the comparison file.
  std::string base_scenario;
  std::string target;
  std::string comparison_file;
};

// Loads `dir`: a comparison folder when it holds comparison.json, a run
// folder when it holds metrics.csv and manifest.json. InvalidArgument when
// it is neither, or when a comparison has no finished run yet; NotFound /
// InvalidArgument naming the file when a run's files cannot be read.
absl::StatusOr<ReportInput> LoadReportInput(const std::string& dir);

}  // namespace fedsim

#endif  // FEDSIM_REPORT_REPORT_INPUT_H_
