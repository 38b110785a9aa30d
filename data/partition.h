// Partitioners: split a dataset's rows among N clients.
//
// All are deterministic functions of their inputs and seed (counter-based
// randomness, util/rng.h), assign every row to exactly one client, and return
// per-client row lists (each list in a deterministic order). Thread-safe.
#ifndef FEDSIM_DATA_PARTITION_H_
#define FEDSIM_DATA_PARTITION_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace fedsim {

using Partition = std::vector<std::vector<uint32_t>>;

// Shuffled rows dealt into num_clients near-equal parts (sizes differ by <= 1).
// InvalidArgument when num_clients == 0 or num_clients > num_rows.
absl::StatusOr<Partition> PartitionIid(size_t num_rows, int num_clients, uint64_t seed);

// NIID-Bench Dirichlet label skew (ALGORITHMS.md section 10): per class draw
// p ~ Dir(alpha 1_N), zero the share of clients already holding >= rows/N,
// renormalize, split the class's shuffled rows at cumsum(p); redraw the whole
// partition until every client has >= min_size rows. InvalidArgument when
// min_size * num_clients > rows or after 1000 failed draws (says to lower
// min_size or raise alpha).
absl::StatusOr<Partition> PartitionDirichlet(std::span<const int32_t> labels, int num_classes,
                                             int num_clients, double alpha, size_t min_size,
                                             uint64_t seed);

// McMahan shards: sort rows by label (stable), cut into shards_per_client * N
// equal shards, give each client shards_per_client random shards.
absl::StatusOr<Partition> PartitionShards(std::span<const int32_t> labels, int num_clients,
                                          int shards_per_client, uint64_t seed);

}  // namespace fedsim

#endif  // FEDSIM_DATA_PARTITION_H_
