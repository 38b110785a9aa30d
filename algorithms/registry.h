// The explicit table of aggregation rules (no static self-registration:
// static libraries drop unreferenced objects).
//
// Adding a rule = one file in algorithms/ (its class, its Validate, its
// factory) + one field in config.Algorithm's oneof + one row in registry.cc.
// Nothing in config/ names a rule: scenario validation, `fedsim validate`,
// defaults and the memory estimate all reach the rule through its row.
#ifndef FEDSIM_ALGORITHMS_REGISTRY_H_
#define FEDSIM_ALGORITHMS_REGISTRY_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "algorithms/algorithm.h"
#include "proto/scenario.pb.h"
#include "util/problems.h"

namespace fedsim {

// What a factory knows about the run besides the rule's own parameters.
struct AlgorithmContext {
  size_t num_clients = 0;
  // The model size; 0 = unknown (then update sizes are not checked).
  size_t num_params = 0;
  uint64_t seed = 0;
  // Folder that relative paths in the rule's config (a topology's CSV file)
  // are relative to: the scenario file's. Default: ".".
  std::string scenario_dir = ".";
};

// What validation knows before any data is loaded.
struct RuleCheckContext {
  uint32_t num_clients = 0;
  // The scenario seed (random graphs are checked as they will be drawn).
  // Default: 1.
  uint64_t seed = 1;
  // As AlgorithmContext::scenario_dir. Default: ".".
  std::string scenario_dir = ".";
};

// Reports every problem of config's own section into `problems`, with paths
// from the scenario root ("algorithm.fedbuff.buffer_size") and messages that
// say what to change. Called by `fedsim validate`, by scenario loading, and
// by the rule's own factory, so each check is written once.
// REQUIRES: config's rule is the entry's own; defaults were filled.
using AlgorithmValidator = void (*)(const config::Algorithm& config, const RuleCheckContext& context,
                                    ProblemList* problems);

// Fills the defaults the schema cannot declare (a oneof's default member,
// e.g. FedBuff's staleness polynomial {a: 0.5}). Declared [default = ...]
// values are filled generically by the config layer. May be null.
using AlgorithmDefaults = void (*)(config::Algorithm* config);

// Bytes of server-side state the rule keeps beyond the global model and the
// engine's own buffers (FedAU's MIFA memory: N x params x 4; a decentralized
// rule's client models: N x params x 4). May be null (= 0, or a few scalars
// per client). Used by `fedsim validate` and the memory budget check.
using AlgorithmStateBytes = uint64_t (*)(const config::Algorithm& config, uint64_t num_clients,
                                         uint64_t num_params);

// Lines that describe the configured rule beyond its parameters (a
// decentralized rule's graph, mixing matrix and spectral gap), printed by
// `fedsim validate` as comments and recorded in the run manifest. May be
// null. Only called on a config its validator accepted.
using AlgorithmNotes = std::vector<std::string> (*)(const config::Algorithm& config,
                                                     const RuleCheckContext& context);

using AlgorithmFactory = absl::StatusOr<std::unique_ptr<Algorithm>> (*)(
    const config::Algorithm& config, const AlgorithmContext& context);

struct AlgorithmEntry {
  std::string_view name;     // the field name in config.Algorithm's oneof
  std::string_view summary;  // one line for --help and docs
  config::Algorithm::RuleCase rule;
  AlgorithmValidator validate;
  AlgorithmDefaults fill_defaults;  // may be null
  AlgorithmStateBytes state_bytes;  // may be null
  AlgorithmFactory factory;
  AlgorithmNotes notes = nullptr;   // may be null
};

std::span<const AlgorithmEntry> RegisteredAlgorithms();

// The rule a scenario gets when it names none: the table's first row. (The
// config layer selects it by its oneof field number, so it never names a rule.)
const AlgorithmEntry& DefaultAlgorithm();

// NotFound naming the known rules, with a did-you-mean suggestion.
absl::StatusOr<const AlgorithmEntry*> FindAlgorithm(std::string_view name);

// The row of config's chosen rule. InvalidArgument when none is set or the
// oneof member has no row in this build.
absl::StatusOr<const AlgorithmEntry*> EntryFor(const config::Algorithm& config);

// Builds the rule selected by config's oneof. InvalidArgument when none is
// set or a parameter is out of range (every problem of the rule's validator,
// one per line).
absl::StatusOr<std::unique_ptr<Algorithm>> NewAlgorithm(const config::Algorithm& config,
                                                        const AlgorithmContext& context);

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_REGISTRY_H_
