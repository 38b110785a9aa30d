// The memory a run plans for, estimated from the scenario before anything
// starts (before any data is loaded or generated), and the budget check
// (limits.memory_budget_mb).
//
// The estimate counts what grows with the configuration:
//  - the aggregation rule's own state, from its registry row's state_bytes
//    (a rule that keeps every client's latest delta: num_clients x params x
//    4 bytes; a server optimizer's two moments: 2 x params x 4);
//  - the engine's model copies: kEngineModelCopies x params x 4 bytes (the
//    global model and the published copy that tasks download);
//  - per-client bookkeeping, whatever the rule: num_clients x
//    BytesPerClient (engine state, device profiles, participation, sizes);
//  - the data held in memory: the loaded dataset and its partition, or, for
//    Synthetic clients generated when they train (partition natural), only
//    the evaluated test rows and the trainer's cache of generated clients.
//    Synthetic sizes are the expected ones (SyntheticMeanClientSize).
// It leaves out buffers of in-flight updates and older versions that
// in-flight tasks still hold (at most one per client in flight), the rows of
// the clients training right now, and the code itself. Sizes are in decimal
// megabytes (10^6 bytes).
//
// Validation refuses a scenario over the budget, so a run of 10^8 or 10^9
// clients is refused with the estimate instead of running out of memory.
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

// Bytes every client costs whatever the rule and the participation process:
// the engine's ClientInfo (56), its device profile twice (the prepared run's
// and the engine's, 2 x 40), examples per task twice (2 x 8), its dispatch
// count (8), the idle set (5), its size n_i (4) and participation
// probability (8): 177, rounded up. sim/engine_test.cc checks it against
// the types' sizes.
inline constexpr uint64_t kBytesPerClient = 184;

struct MemoryEstimate {
  std::string model;  // ModelConfig::ToString(), e.g. "mlp(784-200-200-10)"
  uint64_t num_clients = 0;
  uint64_t num_params = 0;
  uint64_t rule_bytes = 0;    // the rule's state_bytes (0 when the row has none)
  uint64_t engine_bytes = 0;  // kEngineModelCopies x num_params x 4
  // kBytesPerClient plus what the participation process keeps per client.
  uint64_t bytes_per_client = 0;
  uint64_t client_bytes = 0;  // num_clients x bytes_per_client
  uint64_t data_bytes = 0;    // datasets, partitions and generated-client cache
  // What data_bytes counts, e.g. "Synthetic test set: 10,000 rows x 244 B =
  // 2.44 MB + 256 MB cache of generated clients".
  std::string data_detail;
  // The scenario field that shrinks data_bytes, when one does, e.g.
  // "eval.test_limit"; empty otherwise.
  std::string data_hint;
  uint64_t budget_bytes = 0;  // limits.memory_budget_mb x 10^6; 0 = no limit
  // The sum of the parts, saturating.
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
//   clients: 1,000 clients x 184 B = 0.184 MB
//   data: Fashion-MNIST ... = 55.4 MB
//   total: 854 MB of the 8,192 MB budget (limits.memory_budget_mb)
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
