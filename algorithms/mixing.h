// Mixing matrices W for gossip (ALGORITHMS.md section 6): how a Graph
// (algorithms/topology.h) becomes the weights of z_i = sum_l W_il y_l
// (algorithms/gossip.h), the checks that W is what the rule promises, and its
// spectral gap.
//
// Rules (config::Mixing), d_i = degree of client i:
//  - Metropolis-Hastings (the default): W_ij = 1 / (1 + max(d_i, d_j)) for
//    neighbours, W_ii = 1 - sum_{j != i} W_ij. Symmetric and doubly
//    stochastic on any undirected graph; a directed graph (time_varying) is
//    made undirected first (i ~ j when either picked the other).
//  - Uniform rows: W_ij = 1 / (d_i + 1) for j = i and every neighbour of i.
//    Row-stochastic; doubly stochastic only on a regular undirected graph.
//    With time_varying this is the DisPFL / DFedSAM code's setting.
//  - Custom: a weighted edge-list file's matrix (the rule is then ignored).
//  - Fully connected needs no rule of its own: both rules give W = 1/N.
//
// The spectral gap reported (SpectralGap::note says which case applied):
//  - W doubly stochastic: 1 - ||W - J/N||_2, J the all-ones matrix, i.e. the
//    fraction by which one gossip step at least shrinks the distance of the
//    models from their mean. For a symmetric W this is 1 - |lambda_2|, with
//    |lambda_2| the second largest eigenvalue modulus (Eigen's
//    SelfAdjointEigenSolver on W - J/N); for a non-symmetric one,
//    1 - sigma_2(W) (the eigenvalues of (W - J/N)^T (W - J/N)). Dense, so
//    skipped above SpectralGapOptions::max_dense_clients.
//  - W only row-stochastic (uniform rows on an irregular graph, a custom
//    matrix): none: "not doubly stochastic: no spectral gap". Gossip with such
//    a W still reaches consensus on a connected graph, but on a weighted
//    average of the models, not on their mean.
//  - time_varying: the gap of the expected matrix E[W] (E[(W + W^T)/2], which
//    is the same matrix): clients are exchangeable, so E[W] = a I + b (J - I)
//    with a = E[W_ii] and b = (1 - a) / (N - 1), and the gap is
//    1 - |a - b|. a is the mean diagonal weight over the first
//    SpectralGapOptions::sample_rounds rounds (exact for uniform rows, where
//    every W_ii is 1 / (k + 1)). Optimistic: one round's W mixes less than
//    E[W] (its graph may even be disconnected).
//
// Thread safety: MixingMatrix is an immutable value; the functions are pure.
#ifndef FEDSIM_ALGORITHMS_MIXING_H_
#define FEDSIM_ALGORITHMS_MIXING_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "algorithms/topology.h"
#include "proto/scenario.pb.h"

namespace fedsim {

// Row sums (and symmetry, column sums) may differ from exact by this much.
inline constexpr double kMixingTolerance = 1e-9;

// A sparse N x N matrix: per row its nonzero entries (column, weight) in
// ascending column order, the diagonal included.
class MixingMatrix {
 public:
  // The 0 x 0 matrix.
  MixingMatrix() = default;

  // From rows. InvalidArgument naming the row when a row's columns are not
  // strictly ascending, a column is >= rows.size() or a weight is not finite.
  // Row sums are not checked here (CheckRowsSumToOne does).
  static absl::StatusOr<MixingMatrix> FromRows(const CustomMatrix& rows);

  uint32_t num_clients() const { return static_cast<uint32_t>(offsets_.size() - 1); }
  // Row i's entries. REQUIRES: i < num_clients().
  std::span<const MatrixEntry> row(uint32_t i) const {
    return {entries_.data() + offsets_[i], entries_.data() + offsets_[i + 1]};
  }
  // W_ij, 0 when absent. O(log row length). REQUIRES: i, j < num_clients().
  double at(uint32_t i, uint32_t j) const;
  // Stored entries, the diagonal included.
  uint64_t num_entries() const { return entries_.size(); }

 private:
  std::vector<uint64_t> offsets_{0};
  std::vector<MatrixEntry> entries_;
};

enum class MixingRule { kMetropolisHastings, kUniformRows, kCustom };
// "Metropolis-Hastings", "uniform rows", "custom".
std::string_view MixingRuleName(MixingRule rule);
// MIXING_UNSPECIFIED is METROPOLIS_HASTINGS.
MixingRule MixingRuleOf(config::Mixing mixing);

// The two rules on a graph (see the file comment).
MixingMatrix MetropolisHastings(const Graph& graph);
MixingMatrix UniformRows(const Graph& graph);

// Which properties hold, each within kMixingTolerance.
struct MixingProperties {
  // Every row sums to 1.
  bool row_stochastic = false;
  // Every column sums to 1.
  bool column_stochastic = false;
  // W_ij == W_ji for all i, j.
  bool symmetric = false;
  // No negative entry.
  bool nonnegative = false;
  // The row whose sum is furthest from 1, and that sum.
  uint32_t worst_row = 0;
  double worst_row_sum = 1;

  bool doubly_stochastic() const { return row_stochastic && column_stochastic; }
  // "symmetric, doubly stochastic", "doubly stochastic, not symmetric",
  // "row-stochastic only (not doubly stochastic)", "rows do not sum to 1".
  std::string Describe() const;
};
MixingProperties CheckMixing(const MixingMatrix& w);

// OK when every row sums to 1 within kMixingTolerance; otherwise
// InvalidArgument naming the bad rows and their sums ("row 3 of the mixing
// matrix sums to 0.95, not 1"; at most 5 rows named).
absl::Status CheckRowsSumToOne(const MixingMatrix& w);

// W for a graph of `topology` (a graph it returned from GraphAt): the custom
// matrix when topology.custom_matrix() is set (`mixing` ignored), else the
// rule's matrix. Checks what the rule promises: every row sums to 1, and
// Metropolis-Hastings W is symmetric and doubly stochastic (InternalError
// when not: a bug); InvalidArgument for a custom matrix whose row does not sum
// to 1 (CheckRowsSumToOne's message).
// REQUIRES: graph.num_clients() == topology.num_clients().
absl::StatusOr<MixingMatrix> BuildMixing(const Topology& topology, const Graph& graph,
                                         config::Mixing mixing);

struct SpectralGapOptions {
  // The dense eigensolver runs up to this many clients (O(N^3): about 2 s
  // and 32 MB at 2000); above, the gap is skipped with a note. Default: 2000.
  uint32_t max_dense_clients = 2000;
  // time_varying: rounds whose mean diagonal weight estimates E[W_ii].
  // Default: 16.
  uint32_t sample_rounds = 16;
};

struct SpectralGap {
  // The gap (see the file comment); nullopt when not computed.
  std::optional<double> value;
  // How it was computed, or why not: "1 - |lambda_2|", "1 - sigma_2(W)",
  // "not doubly stochastic: no spectral gap", "skipped: ...", "of E[W] ...".
  std::string note;
};

// The gap of one matrix (the first two cases of the file comment).
// N = 1: 1 (nothing to mix).
SpectralGap ComputeSpectralGap(const MixingMatrix& w, const SpectralGapOptions& options = {});

// What `fedsim validate` and the run manifest print about a topology.
struct MixingSummary {
  MixingRule rule = MixingRule::kMetropolisHastings;
  // Of round 0's matrix.
  MixingProperties properties;
  SpectralGap gap;
  // One line, e.g. "random_regular(degree=10, seed=1), Metropolis-Hastings:
  // symmetric, doubly stochastic; spectral gap 0.2912 (1 - |lambda_2|)".
  std::string text;
};

// Builds round 0's W (and, for time_varying, sample_rounds rounds' W) and
// summarizes it; BuildMixing's errors.
absl::StatusOr<MixingSummary> SummarizeMixing(const Topology& topology, config::Mixing mixing,
                                              const SpectralGapOptions& options = {});

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_MIXING_H_
