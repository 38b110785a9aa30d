// The per-client participation probabilities p_i of a ParticipationModel
// (sim/participation.h, which documents the generators in full). Split out of
// participation.cc so that the processes and their probability generators can
// be read apart.
//
// Thread safety: pure functions.
#ifndef FEDSIM_SIM_PARTICIPATION_PROBABILITY_H_
#define FEDSIM_SIM_PARTICIPATION_PROBABILITY_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/scenario.pb.h"

namespace fedsim {

// p_i = DrawFromDistribution(dist, seed, "participation_prob", i, n, 1.0)
// (sim/distribution.h): unset means constant 1. Not clipped.
// REQUIRES: `dist` passed ValidateParticipation (config/fleet.h): uniform
// lo <= hi, lognormal sigma >= 0, a table of `num_clients` values.
absl::StatusOr<std::vector<double>> ProbabilitiesFromDistribution(const config::Distribution& dist,
                                                                  size_t num_clients,
                                                                  uint64_t seed);

// FedAU's label-correlated generator:
//   p_i = max(p_min, p_mean C sum_c labeldist_i[c] m[c]), m ~ Dir(alpha_part 1_C)
// with m drawn once from Rng(seed, "participation_labels") and shared by all
// clients (that shared draw is what correlates participation with labels).
// `labels` holds each client's label histogram (counts or fractions; each row
// is normalized). Not clipped at 1. InvalidArgument for a row count other
// than `num_clients`, no classes, rows of different lengths, a negative share.
// REQUIRES: `config` passed ValidateParticipation (config/fleet.h): p_mean and
// p_min in [0, 1], alpha_part finite and > 0.
absl::StatusOr<std::vector<double>> LabelCorrelatedProbabilities(
    const config::ParticipationProbability::LabelCorrelated& config, size_t num_clients,
    const std::vector<std::vector<double>>& labels, uint64_t seed);

}  // namespace fedsim

#endif  // FEDSIM_SIM_PARTICIPATION_PROBABILITY_H_
