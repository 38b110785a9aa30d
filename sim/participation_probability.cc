#include "sim/participation_probability.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sim/distribution.h"
#include "util/rng.h"

namespace fedsim {
namespace {

absl::Status Invalid(absl::string_view field, absl::string_view what, double v) {
  return absl::InvalidArgumentError(
      absl::StrCat("participation.", field, " must be ", what, ", got ", v));
}

}  // namespace

absl::StatusOr<std::vector<double>> ProbabilitiesFromDistribution(const config::Distribution& d,
                                                                  size_t n, uint64_t seed) {
  switch (d.kind_case()) {
    case config::Distribution::kUniform:
      if (!(d.uniform().lo() <= d.uniform().hi())) {
        return Invalid("probability.distribution.uniform.lo", "<= hi", d.uniform().lo());
      }
      break;
    case config::Distribution::kLognormal:
      if (!(d.lognormal().sigma() >= 0)) {
        return Invalid("probability.distribution.lognormal.sigma", ">= 0", d.lognormal().sigma());
      }
      break;
    case config::Distribution::kTable:
      if (static_cast<size_t>(d.table().values_size()) != n) {
        return absl::InvalidArgumentError(
            absl::StrCat("participation.probability.distribution.table has ",
                         d.table().values_size(), " values, want num_clients = ", n));
      }
      break;
    default:
      break;
  }
  // Unset: the documented default, constant 1.
  return DrawForClients(d, seed, "participation_prob", static_cast<uint32_t>(n), 1.0);
}

absl::StatusOr<std::vector<double>> LabelCorrelatedProbabilities(
    const config::ParticipationProbability::LabelCorrelated& lc, size_t n,
    const std::vector<std::vector<double>>& labels, uint64_t seed) {
  if (!(lc.p_mean() >= 0 && lc.p_mean() <= 1)) {
    return Invalid("probability.label_correlated.p_mean", "in [0, 1]", lc.p_mean());
  }
  if (!(lc.p_min() >= 0 && lc.p_min() <= 1)) {
    return Invalid("probability.label_correlated.p_min", "in [0, 1]", lc.p_min());
  }
  if (!(lc.alpha_part() > 0 && std::isfinite(lc.alpha_part()))) {
    return Invalid("probability.label_correlated.alpha_part", "> 0", lc.alpha_part());
  }
  if (labels.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("participation.probability.label_correlated needs the label distribution "
                     "of every client: got ",
                     labels.size(), " rows for ", n, " clients"));
  }
  const size_t num_classes = labels[0].size();
  if (num_classes == 0) {
    return absl::InvalidArgumentError(
        "participation.probability.label_correlated: label distributions have no classes");
  }
  // One m for the whole fleet: that shared draw is what correlates
  // participation with labels.
  const std::vector<double> m =
      Rng(seed, "participation_labels").DirichletSymmetric(lc.alpha_part(), num_classes);
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (labels[i].size() != num_classes) {
      return absl::InvalidArgumentError(
          absl::StrCat("participation.probability.label_correlated: client ", i, " has ",
                       labels[i].size(), " label classes, client 0 has ", num_classes));
    }
    double total = 0, dot = 0;
    for (size_t c = 0; c < num_classes; ++c) {
      if (!(labels[i][c] >= 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat("participation.probability.label_correlated: client ", i,
                         " has a negative label share"));
      }
      total += labels[i][c];
      dot += labels[i][c] * m[c];
    }
    const double share = total > 0 ? dot / total : 0.0;
    out[i] = std::max(lc.p_min(), lc.p_mean() * static_cast<double>(num_classes) * share);
  }
  return out;
}

}  // namespace fedsim
