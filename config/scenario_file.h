// Scenario files: the pipeline from text to a resolved, validated
// config::Scenario, and the canonical text and hash of a scenario.
//
// A scenario is a protobuf-text file of config::Scenario (proto/scenario.proto).
// Loading one is a fixed pipeline, each stage in its own file of config/:
//
//   text --parse (diagnostics.h)--> Scenario --overrides (overrides.h, --set)-->
//        --FillDefaults (defaults.h)--> --ValidateScenario (validate.h)-->
//
// and every error on the way names where it comes from:
//
//   scenarios/x.textproto:12:5: no field 'lrr' in LocalTraining (did you mean 'lr'?)
//   --set local.lrr=0.1: no field 'lrr' in LocalTraining (did you mean 'lr'?)
//   scenarios/x.textproto:7:19: partition.dirichlet.alpha: must be > 0, got 0;
//       smaller alpha means stronger label skew; 0.1 .. 1 are typical
//
// Lines and columns are 1-based. Every stage reports all the problems it finds,
// not only the first, as one InvalidArgument status with one problem per line;
// a stage that fails stops the pipeline.
//
// Thread safety: pure functions (no shared state); may be called from any thread.
#ifndef FEDSIM_CONFIG_SCENARIO_FILE_H_
#define FEDSIM_CONFIG_SCENARIO_FILE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/source_map.h"
#include "proto/scenario.pb.h"

namespace fedsim {

// A parsed scenario with the record of where its fields came from.
struct ParsedScenario {
  config::Scenario scenario;
  SourceMap sources;
};

// ParseTextWithSources (diagnostics.h) for a Scenario.
absl::StatusOr<ParsedScenario> ParseScenarioSyntax(const std::string& text,
                                                   const std::string& display_name);

// The whole pipeline on text: parse, apply overrides, default the name to the
// stem of display_name ("scenarios/quickstart.textproto" -> "quickstart"),
// FillDefaults, ValidateScenario. `sources_out`, when non-null, receives the
// source map.
absl::StatusOr<config::Scenario> ParseScenarioText(const std::string& text,
                                                   const std::string& display_name,
                                                   const std::vector<std::string>& overrides,
                                                   SourceMap* sources_out = nullptr);

// ParseScenarioText on the contents of `path`. Errors, besides the
// pipeline's: those of ReadFileToString (util/file.h), "cannot read the
// scenario file <path>: <why>" (NotFound for a missing file, InvalidArgument
// for a directory or a file over 16 MiB, PermissionDenied); InvalidArgument
// "<path>: the scenario file is empty ..." for a file of nothing but blanks
// and comments, whatever the overrides. A UTF-8 byte-order mark is skipped.
absl::StatusOr<config::Scenario> LoadScenario(const std::string& path,
                                              const std::vector<std::string>& overrides);

// Canonical text format (fields in schema order, one per line). Two equal
// scenarios give byte-identical text.
std::string ScenarioToText(const config::Scenario& scenario);

// Lower-case hex SHA-256 of ScenarioToText(scenario), for run manifests.
std::string ScenarioHash(const config::Scenario& scenario);

// The folder of a scenario file, for resolving relative paths in it
// ("scenarios/x.textproto" -> "scenarios", "x.textproto" -> ".").
std::string ScenarioDir(const std::string& path);

}  // namespace fedsim

#endif  // FEDSIM_CONFIG_SCENARIO_FILE_H_
