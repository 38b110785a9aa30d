#include "algorithms/mixing.h"

// GCC 12 reports false -Wmaybe-uninitialized positives inside its own
// avx512fintrin.h when Eigen's AVX-512 kernels are inlined (as ml/ does).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "util/status_macros.h"

namespace fedsim {

absl::StatusOr<MixingMatrix> MixingMatrix::FromRows(const CustomMatrix& rows) {
  MixingMatrix w;
  const size_t n = rows.size();
  w.offsets_.reserve(n + 1);
  for (size_t i = 0; i < n; ++i) {
    for (size_t e = 0; e < rows[i].size(); ++e) {
      const MatrixEntry& entry = rows[i][e];
      if (entry.col >= n) {
        return absl::InvalidArgumentError(
            absl::StrCat("row ", i, " of the mixing matrix has column ", entry.col,
                         ", but the matrix has ", n, " columns"));
      }
      if (e > 0 && entry.col <= rows[i][e - 1].col) {
        return absl::InvalidArgumentError(absl::StrCat(
            "row ", i, " of the mixing matrix: columns must be strictly ascending, got ",
            rows[i][e - 1].col, " then ", entry.col));
      }
      if (!std::isfinite(entry.weight)) {
        return absl::InvalidArgumentError(absl::StrCat("row ", i, " of the mixing matrix: W_", i,
                                                       ",", entry.col, " is not finite"));
      }
      w.entries_.push_back(entry);
    }
    w.offsets_.push_back(w.entries_.size());
  }
  return w;
}

double MixingMatrix::at(uint32_t i, uint32_t j) const {
  std::span<const MatrixEntry> r = row(i);
  auto it = std::lower_bound(r.begin(), r.end(), j,
                             [](const MatrixEntry& e, uint32_t col) { return e.col < col; });
  return it != r.end() && it->col == j ? it->weight : 0.0;
}

std::string_view MixingRuleName(MixingRule rule) {
  switch (rule) {
    case MixingRule::kMetropolisHastings:
      return "Metropolis-Hastings";
    case MixingRule::kUniformRows:
      return "uniform rows";
    case MixingRule::kCustom:
      return "custom";
  }
  return "?";
}

MixingRule MixingRuleOf(config::Mixing mixing) {
  return mixing == config::UNIFORM_ROWS ? MixingRule::kUniformRows
                                        : MixingRule::kMetropolisHastings;
}

namespace {

// Row i of W: the neighbour weights in column order with the diagonal
// `1 - sum of the others` put in its place (summed in column order).
template <typename WeightFn>
MixingMatrix RowsFrom(const Graph& graph, WeightFn weight) {
  CustomMatrix rows(graph.num_clients());
  for (uint32_t i = 0; i < graph.num_clients(); ++i) {
    std::vector<MatrixEntry>& row = rows[i];
    double off_diagonal = 0;
    bool placed = false;
    for (uint32_t j : graph.neighbors(i)) {
      if (!placed && j > i) {
        row.push_back({i, 0});
        placed = true;
      }
      const double w = weight(i, j);
      row.push_back({j, w});
      off_diagonal += w;
    }
    if (!placed) row.push_back({i, 0});
    for (MatrixEntry& e : row) {
      if (e.col == i) e.weight = 1 - off_diagonal;
    }
  }
  // Columns ascend and weights are finite by construction.
  return *MixingMatrix::FromRows(rows);
}

}  // namespace

MixingMatrix MetropolisHastings(const Graph& graph) {
  const Graph g = graph.Symmetrized();
  return RowsFrom(
      g, [&](uint32_t i, uint32_t j) { return 1.0 / (1.0 + std::max(g.degree(i), g.degree(j))); });
}

MixingMatrix UniformRows(const Graph& graph) {
  // Every entry of row i, the diagonal too, is 1 / (d_i + 1); RowsFrom's
  // "1 - the rest" diagonal differs from it by rounding only, so set it.
  CustomMatrix rows(graph.num_clients());
  for (uint32_t i = 0; i < graph.num_clients(); ++i) {
    const double w = 1.0 / (graph.degree(i) + 1.0);
    bool placed = false;
    for (uint32_t j : graph.neighbors(i)) {
      if (!placed && j > i) {
        rows[i].push_back({i, w});
        placed = true;
      }
      rows[i].push_back({j, w});
    }
    if (!placed) rows[i].push_back({i, w});
  }
  return *MixingMatrix::FromRows(rows);
}

MixingProperties CheckMixing(const MixingMatrix& w) {
  MixingProperties p;
  const uint32_t n = w.num_clients();
  std::vector<double> column_sums(n, 0.0);
  p.row_stochastic = true;
  p.symmetric = true;
  p.nonnegative = true;
  double worst = -1;
  for (uint32_t i = 0; i < n; ++i) {
    double sum = 0;
    for (const MatrixEntry& e : w.row(i)) {
      sum += e.weight;
      column_sums[e.col] += e.weight;
      if (e.weight < 0) p.nonnegative = false;
      if (p.symmetric && std::abs(e.weight - w.at(e.col, i)) > kMixingTolerance) {
        p.symmetric = false;
      }
    }
    const double error = std::abs(sum - 1);
    if (error > worst) {
      worst = error;
      p.worst_row = i;
      p.worst_row_sum = sum;
    }
    if (error > kMixingTolerance) p.row_stochastic = false;
  }
  p.column_stochastic = std::all_of(column_sums.begin(), column_sums.end(),
                                    [](double s) { return std::abs(s - 1) <= kMixingTolerance; });
  return p;
}

std::string MixingProperties::Describe() const {
  if (!row_stochastic) {
    return absl::StrFormat("rows do not sum to 1 (row %d sums to %.12g)", worst_row, worst_row_sum);
  }
  std::string s;
  if (symmetric && column_stochastic) {
    s = "symmetric, doubly stochastic";
  } else if (column_stochastic) {
    s = "doubly stochastic, not symmetric";
  } else {
    s = "row-stochastic only (not doubly stochastic)";
  }
  if (!nonnegative) absl::StrAppend(&s, ", has negative weights");
  return s;
}

absl::Status CheckRowsSumToOne(const MixingMatrix& w) {
  constexpr size_t kMaxNamed = 5;
  std::vector<std::string> bad;
  size_t count = 0;
  for (uint32_t i = 0; i < w.num_clients(); ++i) {
    double sum = 0;
    for (const MatrixEntry& e : w.row(i)) sum += e.weight;
    if (std::abs(sum - 1) <= kMixingTolerance) continue;
    if (++count <= kMaxNamed) {
      bad.push_back(absl::StrFormat("row %d of the mixing matrix sums to %.12g, not 1", i, sum));
    }
  }
  if (count == 0) return absl::OkStatus();
  if (count > kMaxNamed) bad.push_back(absl::StrCat("and ", count - kMaxNamed, " more rows"));
  return absl::InvalidArgumentError(absl::StrJoin(bad, "; "));
}

absl::StatusOr<MixingMatrix> BuildMixing(const Topology& topology, const Graph& graph,
                                         config::Mixing mixing) {
  if (const CustomMatrix* custom = topology.custom_matrix(); custom != nullptr) {
    FEDSIM_ASSIGN_OR_RETURN(MixingMatrix w, MixingMatrix::FromRows(*custom));
    FEDSIM_RETURN_IF_ERROR(CheckRowsSumToOne(w));
    return w;
  }
  const MixingRule rule = MixingRuleOf(mixing);
  MixingMatrix w =
      rule == MixingRule::kUniformRows ? UniformRows(graph) : MetropolisHastings(graph);
  const MixingProperties p = CheckMixing(w);
  const bool kept = rule == MixingRule::kUniformRows
                        ? p.row_stochastic
                        : p.row_stochastic && p.column_stochastic && p.symmetric;
  if (!kept) {
    return absl::InternalError(absl::StrCat(std::string(MixingRuleName(rule)), " weights on ",
                                            topology.Describe(), " came out ", p.Describe()));
  }
  return w;
}

SpectralGap ComputeSpectralGap(const MixingMatrix& w, const SpectralGapOptions& options) {
  const uint32_t n = w.num_clients();
  const MixingProperties p = CheckMixing(w);
  if (!p.doubly_stochastic()) {
    return {std::nullopt, "not doubly stochastic: no spectral gap"};
  }
  if (n <= 1) return {1.0, "one client: nothing to mix"};
  if (n > options.max_dense_clients) {
    return {std::nullopt, absl::StrCat("skipped: ", n, " clients is above the dense limit of ",
                                       options.max_dense_clients)};
  }
  // M = W - J/N removes the eigenvalue 1 of the consensus direction and keeps
  // every other eigenvalue (W doubly stochastic: the other eigenvectors, or
  // singular vectors, are orthogonal to the all-ones vector).
  Eigen::MatrixXd m = Eigen::MatrixXd::Constant(n, n, -1.0 / n);
  for (uint32_t i = 0; i < n; ++i) {
    for (const MatrixEntry& e : w.row(i)) m(i, e.col) += e.weight;
  }
  if (p.symmetric) {
    // Symmetrize away the rounding-level asymmetry the tolerance allowed.
    const Eigen::MatrixXd s = 0.5 * (m + m.transpose());
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(s, Eigen::EigenvaluesOnly);
    const Eigen::VectorXd& ev = solver.eigenvalues();  // ascending
    const double slem = std::max(std::abs(ev(0)), std::abs(ev(n - 1)));
    return {1.0 - slem, "1 - |lambda_2|"};
  }
  const Eigen::MatrixXd mtm = m.transpose() * m;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(mtm, Eigen::EigenvaluesOnly);
  const double sigma2 = std::sqrt(std::max(0.0, solver.eigenvalues()(n - 1)));
  return {1.0 - sigma2, "1 - sigma_2(W), W not symmetric"};
}

absl::StatusOr<MixingSummary> SummarizeMixing(const Topology& topology, config::Mixing mixing,
                                              const SpectralGapOptions& options) {
  MixingSummary out;
  out.rule = topology.custom_matrix() != nullptr ? MixingRule::kCustom : MixingRuleOf(mixing);
  FEDSIM_ASSIGN_OR_RETURN(MixingMatrix w0, BuildMixing(topology, *topology.GraphAt(0), mixing));
  out.properties = CheckMixing(w0);
  std::string where = "";
  if (!topology.time_varying()) {
    out.gap = ComputeSpectralGap(w0, options);
  } else {
    where = " in each round";
    const uint32_t n = topology.num_clients();
    const uint32_t rounds = std::max<uint32_t>(1, options.sample_rounds);
    double diagonal_sum = 0;
    for (uint32_t r = 0; r < rounds; ++r) {
      FEDSIM_ASSIGN_OR_RETURN(MixingMatrix w, BuildMixing(topology, *topology.GraphAt(r), mixing));
      for (uint32_t i = 0; i < n; ++i) diagonal_sum += w.at(i, i);
    }
    const double a = diagonal_sum / (static_cast<double>(rounds) * n);
    const double b = n > 1 ? (1 - a) / (n - 1) : 0;
    out.gap = {1.0 - std::abs(a - b),
               absl::StrFormat("of E[W] = a I + b (J - I), a = mean W_ii over %d rounds = %.6g",
                               rounds, a)};
  }
  std::string gap = out.gap.value.has_value()
                        ? absl::StrFormat("spectral gap %.6g (%s)", *out.gap.value, out.gap.note)
                        : out.gap.note;
  out.text = absl::StrCat(topology.Describe(), ", ", std::string(MixingRuleName(out.rule)), ": ",
                          out.properties.Describe(), where, "; ", gap);
  return out;
}

}  // namespace fedsim
