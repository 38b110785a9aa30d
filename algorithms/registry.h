// The explicit table of aggregation rules (no static self-registration:
// static libraries drop unreferenced objects). Adding a rule = one file in
// algorithms/ + one row in registry.cc + one field in config.Algorithm.
#ifndef FEDSIM_ALGORITHMS_REGISTRY_H_
#define FEDSIM_ALGORITHMS_REGISTRY_H_

#include <memory>
#include <span>
#include <string_view>

#include "absl/status/statusor.h"
#include "algorithms/algorithm.h"
#include "proto/scenario.pb.h"

namespace fedsim {

// What a factory knows about the run besides the rule's own parameters.
struct AlgorithmContext {
  size_t num_clients = 0;
  size_t num_params = 0;
  uint64_t seed = 0;
};

using AlgorithmFactory = absl::StatusOr<std::unique_ptr<Algorithm>> (*)(
    const config::Algorithm& config, const AlgorithmContext& context);

struct AlgorithmEntry {
  std::string_view name;     // the field name in config.Algorithm's oneof
  std::string_view summary;  // one line for --help and docs
  config::Algorithm::RuleCase rule;
  AlgorithmFactory factory;
};

std::span<const AlgorithmEntry> RegisteredAlgorithms();

// NotFound naming the known rules, with a did-you-mean suggestion.
absl::StatusOr<const AlgorithmEntry*> FindAlgorithm(std::string_view name);

// Builds the rule selected by config's oneof. InvalidArgument when none is
// set or a parameter is out of range (naming the field).
absl::StatusOr<std::unique_ptr<Algorithm>> NewAlgorithm(const config::Algorithm& config,
                                                        const AlgorithmContext& context);

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_REGISTRY_H_
