// Comparison files (proto/compare.proto): parsing with file:line:col
// diagnostics, the checks of the comparison's own fields, and resolving
// every arm against its base scenario, so that every mistake is reported
// before any run starts (PlanComparison, compare/plan.h, resolves the arms):
//
//   scenarios/compare/x.textproto:9:3: arms[1].name: 'fedbuff' is used by arms[0] too; ...
//   scenarios/compare/x.textproto:12:8: arm 'fedasync': --set algorithm.fedasyc.alpha=0.6:
//       no field 'fedasyc' in Algorithm (did you mean 'fedasync'?)
//
// Thread safety: pure functions; may be called from any thread.
#ifndef FEDSIM_COMPARE_COMPARISON_FILE_H_
#define FEDSIM_COMPARE_COMPARISON_FILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/source_map.h"
#include "proto/compare.pb.h"

namespace fedsim {

// A parsed and checked comparison file.
struct ComparisonFile {
  // Defaults filled in: `name` (the file's stem when unset) and `seeds`
  // ([1] when empty).
  compare::Comparison spec;
  // The path the file was read from ("" for text without a file).
  std::string path;
  // The base scenario's path: `spec.scenario()` joined to the comparison
  // file's folder and normalized ("scenarios/compare/../x.textproto" ->
  // "scenarios/x.textproto"); an absolute `scenario` stays as written.
  std::string base_scenario;
  // Where each field was written, for later problems.
  SourceMap sources;
};

// Parses `text` (display_name names it in messages and locates the base
// scenario) and checks the comparison's own fields: a base scenario, at
// least one arm, arm names present, valid and unique, unique seeds, no arm
// or common `set` that assigns `seed` or `name`, a target accuracy in (0, 1],
// final_evals >= 1. InvalidArgument lists every problem, one per line, each
// "file:line:col: path: message". Does not read the base scenario
// (PlanComparison in compare/plan.h does).
absl::StatusOr<ComparisonFile> ParseComparisonText(const std::string& text,
                                                   const std::string& display_name);

// ParseComparisonText on the contents of `path`. Also the errors of
// ReadFileToString (util/file.h: "cannot read the comparison file <path>:
// no such file or directory", NotFound; a directory, InvalidArgument), and
// InvalidArgument "<path>: the comparison file is empty ..." for a file of
// nothing but blanks and comments.
absl::StatusOr<ComparisonFile> LoadComparison(const std::string& path);

// The overrides that make arm `arm_index`'s run for `seed`, in the order
// they apply: the comparison's `set`, the arm's `set`, `extra` (the command
// line's --set, which has the last word), then "seed=<seed>".
// REQUIRES: arm_index < file.spec.arms_size().
std::vector<std::string> ArmOverrides(const ComparisonFile& file, int arm_index,
                                      const std::vector<std::string>& extra, uint64_t seed);

// True for letters, digits, '-', '_' and '.' (names of comparisons and arms
// become folder names).
bool ValidComparisonName(const std::string& name);

}  // namespace fedsim

#endif  // FEDSIM_COMPARE_COMPARISON_FILE_H_
