// The figures of a comparison: per run (from its metrics.csv, by column
// name), per arm (mean and sample standard deviation over seeds), and the
// paired differences of each arm against the first one on the same seeds,
// with a 95% interval from Student's t distribution.
//
// summary.csv: one row per arm; for every figure <key>_mean and <key>_std,
// and <key>_n (runs that have the figure: for the time-to-target figures,
// the runs that reached the target). Optional figures (robust_accuracy,
// consensus_distance, client_accuracy_*, ...) get columns when some run of
// the comparison has them.
// summary.md: the same as a Markdown table, then the paired differences.
//
// Thread safety: pure functions.
#ifndef FEDSIM_COMPARE_SUMMARY_H_
#define FEDSIM_COMPARE_SUMMARY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "compare/run_files.h"
#include "proto/compare.pb.h"

namespace fedsim {

// The figures of one finished run.
struct RunFigures {
  // Mean test_accuracy over the last `final_evals` evaluations.
  double final_accuracy = 0;
  double best_accuracy = 0;
  // The first evaluation whose target column reaches the target: its
  // virtual time and updates_applied (unset when never reached, or without
  // a target).
  std::optional<double> time_to_target;
  std::optional<double> updates_to_target;
  // At the last evaluation.
  double bytes_up = 0;
  double bytes_down = 0;
  // Over every applied update of the run (each evaluation's interval mean,
  // weighted by the updates applied in that interval).
  double mean_staleness = 0;
  // The last value of each optional column the run has (OptionalColumns()),
  // absent when the column is missing or empty in the last row.
  std::map<std::string, double> extra;
};

// metrics.csv columns reported when present, in this order: robust_accuracy,
// fgsm_accuracy, consensus_distance, client_accuracy_mean,
// client_accuracy_min, client_accuracy_max.
const std::vector<std::string>& OptionalColumns();

// Errors (InvalidArgument) when the table has no rows or lacks a base
// column (test_accuracy, virtual_time, updates_applied, bytes_up,
// bytes_down, mean_staleness) or the target's column.
absl::StatusOr<RunFigures> FiguresOfRun(const MetricsTable& metrics,
                                        const compare::Comparison& spec);

struct ArmResults {
  std::string name;
  std::string note;
  std::string algorithm;                   // registry name of the arm's rule
  std::vector<std::string> overrides;      // the arm's own `set`
  std::map<uint64_t, RunFigures> by_seed;  // the finished runs
  std::vector<std::string> failures;       // "seed 2: <why>", for runs that failed
};

struct SummaryInput {
  compare::Comparison spec;  // name, seeds, target, final_evals, common set
  std::string comparison_file;
  std::string base_scenario;
  std::vector<std::string> command_line_overrides;
  std::vector<ArmResults> arms;        // in the file's order; arms[0] is the baseline
  std::vector<std::string> build_ids;  // of the runs (normally one)
};

std::string SummaryCsv(const SummaryInput& in);
std::string SummaryMarkdown(const SummaryInput& in);

}  // namespace fedsim

#endif  // FEDSIM_COMPARE_SUMMARY_H_
