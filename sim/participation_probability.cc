#include "sim/participation_probability.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sim/distribution.h"
#include "util/rng.h"

namespace fedsim {

absl::StatusOr<std::vector<double>> ProbabilitiesFromDistribution(const config::Distribution& d,
                                                                  size_t n, uint64_t seed) {
  // The parameters were checked by ValidateParticipation (config/fleet.h).
  // Unset: the documented default, constant 1.
  return DrawForClients(d, seed, "participation_prob", static_cast<uint32_t>(n), 1.0);
}

absl::StatusOr<std::vector<double>> LabelCorrelatedProbabilities(
    const config::ParticipationProbability::LabelCorrelated& lc, size_t n,
    const std::vector<std::vector<double>>& labels, uint64_t seed) {
  // p_mean, p_min and alpha_part were checked by ValidateParticipation.
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
