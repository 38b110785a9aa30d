// Helpers shared by the rules in algorithms/ (not math: that is aggregate.h):
// client selection, parameter checks and the checkpoint encoding of
// AlgorithmState. Internal to algorithms/; the engine never needs it.
//
// Thread safety: free functions without shared state.
#ifndef FEDSIM_ALGORITHMS_RULE_UTIL_H_
#define FEDSIM_ALGORITHMS_RULE_UTIL_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "algorithms/algorithm.h"
#include "algorithms/registry.h"
#include "algorithms/types.h"
#include "util/problems.h"
#include "util/rng.h"

namespace fedsim {

// ------------------------------------------------------------ selection

// k clients drawn uniformly without replacement from fleet.idle_available(),
// in draw order (via num_idle_available / nth_idle_available). k is clamped
// to the number of idle clients.
std::vector<Dispatch> SampleIdle(const FleetView& fleet, Rng& rng, size_t k);

// Async top-up. concurrency == 0: every idle available client, ascending id
// (no draw from rng). Otherwise SampleIdle of concurrency - num_busy clients.
std::vector<Dispatch> TopUp(const FleetView& fleet, Rng& rng, uint32_t concurrency);

// ------------------------------------------------------------ checks
// (The rules' validators also use util/checks.h: CheckPositive, CheckNonNegative.)

// A rule's `concurrency` at `path`: 0 is refused unless zero_means_all
// ("0 = all clients"); above num_clients is refused when num_clients > 0
// (0 = unknown, as in a factory called without a fleet size).
void CheckConcurrency(uint32_t concurrency, uint32_t num_clients, bool zero_means_all,
                      const std::string& path, ProblemList* problems);

// What a factory does with its rule's validator: runs it with the fleet size
// of `context` and returns ProblemList::ToStatus() (OK or InvalidArgument
// with one "path: message" per line).
absl::Status ValidateInFactory(AlgorithmValidator validate, const config::Algorithm& config,
                               const AlgorithmContext& context);

// copies x num_params x 4 bytes (float32 models), saturating at UINT64_MAX,
// for the rules' state_bytes.
uint64_t ModelBytes(uint64_t copies, uint64_t num_params);

// InvalidArgument unless update.delta has num_params elements (num_params 0 =
// unknown, anything goes) and every value is finite.
absl::Status CheckDelta(const ClientUpdate& update, size_t num_params);

// ------------------------------------------------------------ checkpoints

// Keys are "<rule>.<name>"; every Get* returns InvalidArgument naming the key
// when it is missing or malformed, which is what LoadState reports.
void PutScalar(AlgorithmState* out, std::string key, double v);
void PutScalars(AlgorithmState* out, std::string key, std::vector<double> v);
void PutTensor(AlgorithmState* out, std::string key, std::span<const float> v);

absl::StatusOr<double> GetScalar(const AlgorithmState& in, const std::string& key);
// A non-negative integer below 2^53 (counts, ids, versions, booleans).
absl::StatusOr<uint64_t> GetCount(const AlgorithmState& in, const std::string& key);
// size == SIZE_MAX: any size.
absl::StatusOr<std::vector<double>> GetScalars(const AlgorithmState& in, const std::string& key,
                                               size_t size = SIZE_MAX);
// num_params == 0: any size.
absl::StatusOr<std::vector<float>> GetTensor(const AlgorithmState& in, const std::string& key,
                                             size_t num_params);

// A list of buffered updates (without metrics) under "<prefix>.meta" and
// "<prefix>.<i>".
void PutUpdates(AlgorithmState* out, const std::string& prefix,
                std::span<const ClientUpdate> updates);
absl::StatusOr<std::vector<ClientUpdate>> GetUpdates(const AlgorithmState& in,
                                                     const std::string& prefix, size_t num_params);

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_RULE_UTIL_H_
