// Scenario files: parsing, command-line overrides, defaults and validation.
//
// A scenario is a protobuf-text file of config::Scenario (proto/scenario.proto).
// Loading one is a fixed pipeline:
//
//   text --parse--> Scenario --overrides (--set)--> --FillDefaults--> --Validate-->
//
// and every error on the way names where it comes from:
//
//   scenarios/x.textproto:12:5: Message type "fedsim.config.LocalTraining" has no
//       field named "lrr". (did you mean 'lr'?)
//   --set local.lrr=0.1: no field 'lrr' in LocalTraining (did you mean 'lr'?)
//   scenarios/x.textproto:7:19: algorithm.fedbuff.buffer_size: 30 is larger than
//       concurrency 20, so the buffer can never fill; lower buffer_size or raise ...
//
// Lines and columns are 1-based. Every stage reports all the problems it finds,
// not only the first, as one InvalidArgument status with one problem per line.
//
// Thread safety: all functions are pure (no shared state) and may be called
// from any thread. SourceMap is a value; not thread-safe for concurrent writes.
#ifndef FEDSIM_SIM_SCENARIO_H_
#define FEDSIM_SIM_SCENARIO_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/scenario.pb.h"

namespace fedsim {

// Where the fields of one parsed scenario came from: a position in the file,
// a --set override, or neither (a default). Paths are dotted field names with
// indices for repeated fields: "algorithm.fedbuff.buffer_size", "events[2].at_s",
// "model.mlp.hidden[1]".
class SourceMap {
 public:
  struct Location {
    int line = 0;    // 1-based
    int column = 0;  // 1-based
  };

  SourceMap() = default;
  explicit SourceMap(std::string file) : file_(std::move(file)) {}

  // The file name used in messages ("" for text without a file).
  const std::string& file() const { return file_; }

  // Records that the field at `path` starts at `location` in the file.
  void AddParsed(const std::string& path, Location location);
  // Records that --set assigned the field at `path` (and everything under it).
  void AddOverride(const std::string& path);

  // The file location of `path` when it was written in the file and not
  // replaced by --set since.
  std::optional<Location> Find(const std::string& path) const;
  // True when --set assigned `path` or one of its ancestors.
  bool FromOverride(const std::string& path) const;

  // The prefix of an error about `path`:
  //   "file:line:col: path"             (written in the file)
  //   "file: path (from --set)"          (assigned by --set)
  //   "file: path (default)"             (filled in by FillDefaults)
  // `file` is "<scenario>" when the map has no file name.
  std::string Describe(const std::string& path) const;

 private:
  std::string file_;
  std::map<std::string, Location> parsed_;
  std::set<std::string> overridden_;
};

// A parsed scenario with the record of where its fields came from.
struct ParsedScenario {
  config::Scenario scenario;
  SourceMap sources;
};

// Parses protobuf text into a Scenario. Unknown fields are errors. Returns
// InvalidArgument listing every syntax error found, one per line, each as
// "display_name:line:col: message". After the first error the parser resumes
// at the next field, so independent mistakes are all reported at once.
absl::StatusOr<ParsedScenario> ParseScenarioSyntax(const std::string& text,
                                                   const std::string& display_name);

// Applies `--set path.to.field=value` overrides in order (see ApplyOverride).
// Reports every bad override, not only the first. Absl's vector flag splits at
// commas, so fragments that cannot start an override ("50]" from
// "hidden=[100,50]") are first joined back onto the one before (see
// JoinOverrideFragments).
absl::Status ApplyOverrides(const std::vector<std::string>& overrides, config::Scenario* scenario,
                            SourceMap* sources);

// One override `path=value`:
//   - path: field names separated by '.', e.g. "algorithm.fedbuff.buffer_size";
//     a repeated message field takes an index, "events[0].at_s" (index == size
//     appends a new element).
//   - value: in text format for the field's type: 0.05, true, UNIFORM, "text"
//     (quotes optional for strings), [100, 50] for repeated fields (brackets
//     optional), {dirichlet {alpha: 0.1}} for messages (braces optional).
//   A message or repeated value replaces the field's content; it is not merged.
//   Setting a field inside a oneof member selects that member and clears the
//   others ("algorithm.fedbuff.buffer_size=5" switches the rule to FedBuff).
// Errors (InvalidArgument) start with "--set <override>: " and name the bad
// path element with a did-you-mean among the message's fields, or the bad value.
// `sources` may be null.
absl::Status ApplyOverride(const std::string& override_text, config::Scenario* scenario,
                           SourceMap* sources);

// Joins comma-split fragments of overrides back together (see ApplyOverrides).
std::vector<std::string> JoinOverrideFragments(const std::vector<std::string>& fragments);

// Makes every default explicit, so that printing the scenario shows the whole
// configuration. Sets each unset singular field that declares a default in the
// schema, in every present message, and the defaults the schema documents in
// comments: dataset fashion_mnist {}, partition iid {} (natural {} for
// Synthetic), model mlp {hidden: [200, 200]}, algorithm fedavg {}, device
// distributions constant (0.001 s/example, latencies 0, bandwidths 0 =
// unlimited), participation always {} (probability constant 1 for the
// Bernoulli, Markov and cyclic processes), staleness polynomial {a: 0.5} for
// FedAsync and FedBuff, and local/stop/eval/clock/output present. An empty
// name becomes "scenario". Idempotent.
void FillDefaults(config::Scenario* scenario);

// Semantic checks that need no data files, run before anything starts. Returns
// OK or InvalidArgument listing every problem, one per line, each as
//   "<SourceMap::Describe(path)>: what is wrong; what to change".
// `sources` may be null (messages then use "<scenario>" as the file).
// Checks that need the data (shards or Dirichlet min_size against the number
// of training rows) are done by BuildRunData (runtime/run_setup.h).
// REQUIRES: FillDefaults() was applied (unset messages count as defaults).
absl::Status ValidateScenario(const config::Scenario& scenario, const SourceMap* sources);

// The whole pipeline on text: parse, apply overrides, default the name to the
// stem of display_name ("scenarios/quickstart.textproto" -> "quickstart"),
// FillDefaults, validate. `sources_out`, when non-null, receives the source map.
absl::StatusOr<config::Scenario> ParseScenarioText(const std::string& text,
                                                   const std::string& display_name,
                                                   const std::vector<std::string>& overrides,
                                                   SourceMap* sources_out = nullptr);

// ParseScenarioText on the contents of `path` (NotFound when it cannot be read).
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

#endif  // FEDSIM_SIM_SCENARIO_H_
