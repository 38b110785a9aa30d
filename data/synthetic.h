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

// n_k (train + test rows) of `client`: examples_per_client, or
// int(lognormal(4, 2)) + 50 from the client's own size stream. O(1): it draws
// neither the client's model nor its rows, so the engine can weight a fleet
// of 10^6 clients without generating their data. Equals
// SyntheticModelForClient(options, client, seed).num_examples.
// REQUIRES: options valid.
size_t SyntheticClientSize(const SyntheticOptions& options, int client, uint64_t seed);

// The mean n_k over clients, for memory estimates: examples_per_client, or
// E[int(lognormal(4, 2))] + 50 = e^6 - 1/2 + 50 (about 453) for drawn sizes.
double SyntheticMeanClientSize(const SyntheticOptions& options);

// Which of a client's two splits GenerateSyntheticClient makes.
enum class SyntheticSplit { kTrain, kTest };

// One client's train or test split on its own, generated on demand (lazily,
// by whoever trains that client): exactly the rows GenerateSynthetic gives
// that client, bit for bit and in the same order, as a dataset whose row 0
// is the split's first row. A pure function of (options, client, seed).
// Time O(n_k x num_features) (the test split skips the train rows it
// follows in the stream cheaply, without computing them); memory only the
// split's rows.
// Errors: InvalidArgument for invalid options (see GenerateSynthetic) or a
// negative client; ResourceExhausted when n_k > kMaxSyntheticRows.
absl::StatusOr<Dataset> GenerateSyntheticClient(const SyntheticOptions& options, int client,
                                                uint64_t seed, SyntheticSplit split);

// The global test set of a fleet of `num_clients`: the test splits of
// clients 0, 1, 2, ... concatenated in that order and cut after `max_rows`
// rows (0 = every client's). Equal to the first max_rows rows of
// GenerateSynthetic(options, num_clients, seed)->test; only the clients it
// needs are generated, so a small max_rows keeps a large fleet cheap.
// Errors: as GenerateSynthetic's; ResourceExhausted when the rows kept
// exceed kMaxSyntheticRows (set a row limit).
absl::StatusOr<Dataset> GenerateSyntheticTestSet(const SyntheticOptions& options, int num_clients,
                                                 uint64_t seed, size_t max_rows);

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
