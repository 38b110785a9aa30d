// Internals of the Synthetic(alpha, beta) generator (GenerateSynthetic in
// dataset.h), exposed so tests and analysis tools can check generated labels
// against the model that produced them.
//
// Thread-safe: pure functions of their arguments.
#ifndef FEDSIM_DATA_SYNTHETIC_H_
#define FEDSIM_DATA_SYNTHETIC_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"

namespace fedsim {

// The per-client ground truth of Synthetic(alpha, beta) (ALGORITHMS.md 10).
struct SyntheticClientModel {
  size_t num_examples = 0;   // n_k (train + test)
  std::vector<double> mean;  // v_k, num_features (all 0 in the IID variant)
  std::vector<double> w;     // W_k, num_features x num_classes, row-major
  std::vector<double> b;     // b_k, num_classes
};

// The model client `client` gets under (options, seed). It depends only on
// (options, client, seed), never on the number of clients. In the IID variant
// w and b are the same for every client.
// REQUIRES: options valid (see GenerateSynthetic's errors).
SyntheticClientModel SyntheticModelForClient(const SyntheticOptions& options, int client,
                                             uint64_t seed);

// argmax_c (x W + b)_c, first maximum on ties (numpy's argmax). `x` has
// model.mean.size() entries.
int SyntheticLabel(const SyntheticClientModel& model, const float* x);

// Rows client k keeps for training out of n_k: floor(0.9 n_k), the FedProx
// script's int(0.9 * n) computed exactly; the remaining rows are its test split.
inline size_t SyntheticTrainCount(size_t n) { return n * 9 / 10; }

// GenerateSynthetic refuses to produce more rows than this in total (about 16
// GiB of features at 60 floats a row). n_k = int(lognormal(4, 2)) + 50 is
// heavy-tailed (median ~105, mean ~450, 1 client in 10^4 above ~93,000 rows),
// so very large fleets or unlucky seeds can hit it; set examples_per_client.
inline constexpr size_t kMaxSyntheticRows = size_t{1} << 26;

}  // namespace fedsim

#endif  // FEDSIM_DATA_SYNTHETIC_H_
