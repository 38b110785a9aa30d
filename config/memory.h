// The server memory a run plans for, estimated from the scenario before
// anything starts, and the budget check (limits.memory_budget_mb).
//
// The estimate counts what grows with the configuration:
//  - the aggregation rule's own state, from its registry row's state_bytes
//    (a rule that keeps every client's latest delta: num_clients x params x
//    4 bytes; a server optimizer's two moments: 2 x params x 4);
//  - the engine's model copies: kEngineModelCopies x params x 4 bytes (the
//    global model and the published copy that tasks download).
// It leaves out what does not: datasets, buffers of in-flight updates and
// older versions that in-flight tasks still hold (at most one per client in
// flight), and the code itself. Sizes are in decimal megabytes (10^6 bytes).
//
// Thread safety: pure functions; may be called from any thread.
#ifndef FEDSIM_CONFIG_MEMORY_H_
#define FEDSIM_CONFIG_MEMORY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/scenario.pb.h"
#include "util/problems.h"

namespace fedsim {

// Float32 copies of the model the engine keeps whatever the rule.
inline constexpr uint64_t kEngineModelCopies = 2;

struct MemoryEstimate {
  std::string model;  // ModelConfig::ToString(), e.g. "mlp(784-200-200-10)"
  uint64_t num_clients = 0;
  uint64_t num_params = 0;
  uint64_t rule_bytes = 0;    // the rule's state_bytes (0 when the row has none)
  uint64_t engine_bytes = 0;  // kEngineModelCopies x num_params x 4
  uint64_t budget_bytes = 0;  // limits.memory_budget_mb x 10^6; 0 = no limit
  // rule_bytes + engine_bytes, saturating.
  uint64_t total_bytes() const;
};

// The estimate for a scenario. InvalidArgument when the model section or the
// rule cannot be resolved (validation reports those problems itself).
// REQUIRES: FillDefaults was applied.
absl::StatusOr<MemoryEstimate> EstimateMemory(const config::Scenario& scenario);

// Lines for `fedsim validate`, e.g.
//   model: mlp(784-200-200-10), 199,210 params
//   algorithm state: 1000 clients x 199,210 params x 4 B = 797 MB
//   engine: 2 model copies x 199,210 params x 4 B = 1.59 MB
//   total: 799 MB of the 8,192 MB budget (limits.memory_budget_mb)
std::vector<std::string> DescribeMemory(const MemoryEstimate& estimate);

// Adds a problem at "limits.memory_budget_mb" when the estimate exceeds the
// budget: the figure and its parts, the budget, and the field to raise. Adds
// nothing when the estimate cannot be made (see EstimateMemory).
// REQUIRES: FillDefaults was applied.
void CheckMemoryBudget(const config::Scenario& scenario, ProblemList* problems);

// 1234567 -> "1,234,567".
std::string FormatCount(uint64_t n);
// Bytes in decimal megabytes: "797 MB", "1.59 MB", "0.024 MB", "512 B".
std::string FormatBytes(uint64_t bytes);

}  // namespace fedsim

#endif  // FEDSIM_CONFIG_MEMORY_H_
