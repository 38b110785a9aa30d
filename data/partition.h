// Partitioners: split a dataset's rows among N clients.
//
// All are deterministic functions of their inputs and seed (counter-based
// randomness, util/rng.h), assign every row to exactly one client, and return
// per-client row lists (each list in ascending row order). Errors are
// InvalidArgument (including more than 2^32 - 1 rows). Thread-safe.
#ifndef FEDSIM_DATA_PARTITION_H_
#define FEDSIM_DATA_PARTITION_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/statusor.h"

namespace fedsim {

using Partition = std::vector<std::vector<uint32_t>>;

// Shuffled rows dealt into num_clients near-equal parts (sizes differ by <= 1).
// InvalidArgument when num_clients <= 0 or num_clients > num_rows.
absl::StatusOr<Partition> PartitionIid(size_t num_rows, int num_clients, uint64_t seed);

// NIID-Bench Dirichlet label skew (ALGORITHMS.md section 10): per class draw
// p ~ Dir(alpha 1_N), zero the share of clients already holding >= rows/N,
// renormalize, split the class's shuffled rows at cumsum(p); redraw the whole
// partition until every client has >= min_size rows. InvalidArgument when
// min_size * num_clients > rows or after 1000 failed draws (says to lower
// min_size or raise alpha), and for num_clients or num_classes <= 0, alpha
// not finite and > 0, or a label outside [0, num_classes). NIID-Bench uses
// min_size 10. Where every eligible share underflows to 0 (alpha ~1e-3 and
// below), the class goes whole to one random eligible client, the alpha -> 0
// limit (NIID-Bench's numpy code would produce NaN there).
absl::StatusOr<Partition> PartitionDirichlet(std::span<const int32_t> labels, int num_classes,
                                             int num_clients, double alpha, size_t min_size,
                                             uint64_t seed);

// Per-client label mixes, as the FedAU code partitions (IBM/fedau,
// util/util.py `partition`): every client i draws its own label mix
// q_i ~ Dir(alpha 1_C), and every class c is split across the clients in
// proportion to q_i[c] / sum_j q_j[c]. Client sizes then stay near
// rows / N (each mix sums to 1) while each client's labels follow its q_i,
// unlike PartitionDirichlet, which draws one Dirichlet per class over the
// clients. The class's rows are shuffled, then SplitByLabelMix's rule cuts
// them. InvalidArgument for num_clients or num_classes <= 0, alpha not
// finite and > 0, a label outside [0, num_classes), and when a client gets
// no row (says to raise alpha or lower num_clients).
absl::StatusOr<Partition> PartitionLabelMix(std::span<const int32_t> labels, int num_classes,
                                            int num_clients, double alpha, uint64_t seed);

// The cut of PartitionLabelMix for given mixes: mix is num_clients rows of
// num_classes weights (row-major, each >= 0; rows need not sum to 1). The
// rows of class c, taken in ascending row order, go to clients 0, 1, ... in
// turn: client i gets positions [round(n_c Q_{i-1}), round(n_c Q_i)), where
// n_c is the class's row count and Q_i = sum_{j <= i} mix[j][c] / sum_j
// mix[j][c] (round half to even, as numpy's round). A class whose column of
// mix sums to 0 is an error; a client may come out empty.
absl::StatusOr<Partition> SplitByLabelMix(std::span<const int32_t> labels, int num_classes,
                                          std::span<const double> mix);

// McMahan shards: sort rows by label (stable), cut into shards_per_client * N
// equal shards, give each client shards_per_client random shards. When the
// shard count does not divide the rows, shard sizes differ by at most one (no
// row is dropped). InvalidArgument when num_clients or shards_per_client <= 0
// or there are more shards than rows.
absl::StatusOr<Partition> PartitionShards(std::span<const int32_t> labels, int num_clients,
                                          int shards_per_client, uint64_t seed);

}  // namespace fedsim

#endif  // FEDSIM_DATA_PARTITION_H_
