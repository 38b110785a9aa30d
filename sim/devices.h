// Device heterogeneity: each client's compute speed and network, and how long
// one task takes on it (FedScale's model: download + compute + upload).
//
// Per-client values are drawn from the scenario's distributions by
// DrawFromDistribution (sim/distribution.h) with counter-based randomness,
// Rng(seed, "device.<field>", client), so client i's value does not depend on
// how many clients there are (except for the linear and table kinds, which are
// defined in terms of N), nor on who asks first.
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
#include "sim/distribution.h"

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

// One profile per client 0..num_clients-1: each field drawn from its
// distribution in scenario.devices (purpose "device.<field>", e.g.
// "device.seconds_per_example"), then replaced for the clients listed in
// devices.profiles_csv. A relative CSV path is resolved against scenario_dir.
//
// The CSV (read by util/csv.h: '#' comments and blank lines are skipped, CRLF
// line ends and a leading UTF-8 byte-order mark are accepted) has the header
// exactly `client,seconds_per_example,latency_s,down_mbps,up_mbps` (latency_s
// is used for both directions); each row sets every field of one client.
// Errors: NotFound "devices.profiles_csv: cannot read <path>: <reason> ..."
// for a file that cannot be read; InvalidArgument "path:line: what is wrong",
// one line per bad row, for a wrong header, a wrong number of fields, a
// value that is not a finite number, a negative value, a client id that is
// not an integer in [0, num_clients), a duplicate client.
// Also InvalidArgument when a drawn value is negative or not finite.
// Also InvalidArgument with every problem of ValidateDevices (config/fleet.h)
// of scenario.devices.
// REQUIRES: the scenario passed ValidateScenario (FillDefaults applied).
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

// One model transfer to / from the client: latency + bytes*8 / (mbps*1e6)
// (no transfer time when the bandwidth is 0 = unlimited). Decentralized rules
// price a gossip step with these.
double DownloadSeconds(const DeviceProfile& profile, uint64_t model_bytes);
double UploadSeconds(const DeviceProfile& profile, uint64_t model_bytes);

// ExpectedTaskSeconds times the task's jitter exp(N(0, jitter_sigma)), drawn
// from Rng(seed, "jitter", client, task_id): the same task always takes the
// same time. jitter_sigma == 0 gives exactly ExpectedTaskSeconds.
double TaskSeconds(const DeviceProfile& profile, uint64_t examples_processed, uint64_t model_bytes,
                   double jitter_sigma, uint64_t seed, uint64_t task_id, uint32_t client);

}  // namespace fedsim

#endif  // FEDSIM_SIM_DEVICES_H_
