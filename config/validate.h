// Semantic checks of a whole scenario, before anything starts: every section
// in one pass, every problem reported (not only the first), each located:
//
//   scenarios/x.textproto:7:19: partition.dirichlet.alpha: must be > 0, got 0;
//       smaller alpha means stronger label skew; 0.1 .. 1 are typical
//   scenarios/x.textproto: local.lr (from --set): must be > 0, got -2; e.g. 0.1
//   scenarios/x.textproto: stop (default): has no condition, ...
//
// Sections are checked by the code that owns them: the fleet (fleet.h), the
// model (model_config.h), the aggregation rule through its registry row
// (algorithms/registry.h: config code names no rule), the memory budget
// (memory.h); the rest here. Checks that need the data files (shards or
// Dirichlet min_size against the number of training rows, trace and profile
// CSVs) are made where those files are read.
//
// Thread safety: pure functions; may be called from any thread.
#ifndef FEDSIM_CONFIG_VALIDATE_H_
#define FEDSIM_CONFIG_VALIDATE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "algorithms/registry.h"
#include "config/source_map.h"
#include "proto/scenario.pb.h"
#include "util/problems.h"

namespace fedsim {

// Adds every problem of `scenario` to *problems, with paths from the scenario
// root and messages that say what to change. Relative paths in the scenario
// are relative to `scenario_dir` (the scenario file's folder).
// REQUIRES: FillDefaults() was applied (unset messages count as defaults).
void CollectScenarioProblems(const config::Scenario& scenario, ProblemList* problems,
                             const std::string& scenario_dir = ".");

// The rule's notes (its registry row's `notes`: a gossip rule's graph
// and spectral gap), for `fedsim validate` and the run manifest; empty when
// the rule has none. REQUIRES: the scenario passed validation.
std::vector<std::string> AlgorithmNotesFor(const config::Scenario& scenario,
                                           const std::string& scenario_dir);

// What a rule's validator (and notes) learn about the scenario.
RuleCheckContext RuleCheckContextFor(const config::Scenario& scenario,
                                     const std::string& scenario_dir);

// The characters a scenario name may hold (it names the run's folder):
// letters, digits, '-', '_' and '.'.
bool ValidScenarioNameChar(char c);

// OK, or InvalidArgument with every problem of CollectScenarioProblems, one
// per line, located by `sources` (LocatedStatus). `sources` may be null
// (messages then use "<scenario>" as the file).
// REQUIRES: FillDefaults() was applied.
absl::Status ValidateScenario(const config::Scenario& scenario, const SourceMap* sources);

}  // namespace fedsim

#endif  // FEDSIM_CONFIG_VALIDATE_H_
