// Device heterogeneity: each client's compute speed and network, and how long
// one task takes on it (FedScale's model: download + compute + upload).
//
// Per-client values are drawn from the scenario's distributions with
// counter-based randomness, Rng(seed, "device.<field>", client), so client i's
// value does not depend on how many clients there are (except for the linear
// and table kinds, which are defined in terms of N), nor on who asks first.
//
// Thread safety: pure functions; DeviceProfile is a plain value.
#ifndef FEDSIM_SIM_DEVICES_H_
#define FEDSIM_SIM_DEVICES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/fleet.h"
#include "proto/scenario.pb.h"

namespace fedsim {

struct DeviceProfile {
  // Compute time per example processed (seconds). Default: the scenario's.
  double seconds_per_example = kDefaultSecondsPerExample;
  // One-way latency of the model download / update upload (seconds).
  double latency_down_s = 0.0;
  double latency_up_s = 0.0;
  // Bandwidth in megabits per second; 0 = unlimited (no transfer time).
  double down_mbps = 0.0;
  double up_mbps = 0.0;
};

// The value of `dist` for `client` of `num_clients`:
//   constant -> the constant; uniform(lo, hi); lognormal -> exp(N(mu, sigma));
//   linear (Fraboni F-X) -> base * (1 - client * (x_percent/100) / (N - 1)),
//     base when N == 1; table -> values[client].
// Random kinds draw from Rng(seed, purpose, client). An unset kind gives
// `fallback`.
// REQUIRES: client < num_clients; a table has num_clients values (see
// CheckDistribution in config/fleet.h).
double DrawFromDistribution(const config::Distribution& dist, uint64_t seed,
                            const std::string& purpose, uint32_t client, uint32_t num_clients,
                            double fallback);

// One profile per client 0..num_clients-1: each field drawn from its
// distribution in scenario.devices (purpose "device.<field>", e.g.
// "device.seconds_per_example"), then replaced for the clients listed in
// devices.profiles_csv. A relative CSV path is resolved against scenario_dir.
//
// The CSV: '#' comments and blank lines are ignored; the first other line is
// the header, exactly `client,seconds_per_example,latency_s,down_mbps,up_mbps`
// (latency_s is used for both directions); each row sets every field of one
// client. Errors (InvalidArgument, NotFound for a missing file) read
// "path:line: what is wrong": a wrong header, a wrong number of cells, a
// non-numeric or negative value, a client id >= num_clients, a duplicate client.
// Also InvalidArgument with every problem of ValidateDevices (config/fleet.h)
// of scenario.devices, and when a drawn value is negative or not finite (a
// lognormal that overflows).
absl::StatusOr<std::vector<DeviceProfile>> BuildDeviceProfiles(const config::Scenario& scenario,
                                                               const std::string& scenario_dir);

// Parses the profiles CSV text (see BuildDeviceProfiles) into `profiles`,
// overriding the rows it lists. `display_name` prefixes error messages.
absl::Status ApplyProfilesCsv(const std::string& text, const std::string& display_name,
                              std::vector<DeviceProfile>* profiles);

// The expected duration of one task in seconds:
//   latency_down + bytes*8 / (down_mbps*1e6)        (0 when down_mbps == 0)
//   + examples_processed * seconds_per_example
//   + latency_up + bytes*8 / (up_mbps*1e6)           (0 when up_mbps == 0)
double ExpectedTaskSeconds(const DeviceProfile& profile, uint64_t examples_processed,
                           uint64_t model_bytes);

// ExpectedTaskSeconds times the task's jitter exp(N(0, jitter_sigma)), drawn
// from Rng(seed, "jitter", client, task_id): the same task always takes the
// same time. jitter_sigma == 0 gives exactly ExpectedTaskSeconds.
double TaskSeconds(const DeviceProfile& profile, uint64_t examples_processed, uint64_t model_bytes,
                   double jitter_sigma, uint64_t seed, uint64_t task_id, uint32_t client);

}  // namespace fedsim

#endif  // FEDSIM_SIM_DEVICES_H_
