// The fleet sections of a scenario, `devices` and `participation`: their
// defaults and their checks, written once here. Scenario validation
// (validate.h) calls them with every other check; the code that builds the
// fleet calls them too (sim/devices.cc, sim/participation.cc), so a model
// built without going through a scenario file is checked the same way.
//
// Paths in problems are from the scenario root ("devices.up_mbps.constant",
// "participation.markov.a").
//
// Thread safety: pure functions; may be called from any thread.
#ifndef FEDSIM_CONFIG_FLEET_H_
#define FEDSIM_CONFIG_FLEET_H_

#include <cstdint>
#include <string>

#include "proto/scenario.pb.h"
#include "util/problems.h"

namespace fedsim {

// Compute seconds per example processed when devices.seconds_per_example is
// not set (scenario.proto documents it).
inline constexpr double kDefaultSecondsPerExample = 0.001;

// Checks a per-client distribution at `path`. Every value must lie in
// [lo, hi] (hi may be +infinity: then [lo, inf)); `what` names the quantity
// in messages ("latency", "probability"). Also: uniform lo <= hi, lognormal
// sigma >= 0 and finite mu, linear x_percent in [0, 100), a table of exactly
// num_clients values. An unset kind passes.
void CheckDistribution(const config::Distribution& d, const std::string& path, uint32_t num_clients,
                       double lo, double hi, const std::string& what, ProblemList* problems);

// The `devices` section: every distribution has values >= 0 (bandwidth 0 =
// unlimited), jitter_sigma >= 0.
void ValidateDevices(const config::Devices& devices, uint32_t num_clients, ProblemList* problems);

// Sets the documented defaults of unset distributions: seconds_per_example
// constant kDefaultSecondsPerExample, latencies 0, bandwidths 0 (unlimited).
void FillDevicesDefaults(config::Devices* devices);

// The `participation` section: Markov a in (0, 1], cyclic period >= 1, a
// trace names its CSV, round_s >= 0, probabilities (a distribution with values
// in [0, 1], or the label-correlated generator's p_mean, p_min in [0, 1] and
// alpha_part > 0). Checks that need the data (label distributions) or the
// trace file are done where those are read (sim/participation.h).
void ValidateParticipation(const config::Participation& participation, uint32_t num_clients,
                           ProblemList* problems);

// Sets the documented defaults: process `always`; for Bernoulli, Markov and
// cyclic processes (or whenever `probability` is present) a probability
// distribution, constant 1 when unset.
void FillParticipationDefaults(config::Participation* participation);

}  // namespace fedsim

#endif  // FEDSIM_CONFIG_FLEET_H_
