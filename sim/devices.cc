#include "sim/devices.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "util/csv.h"
#include "util/rng.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

constexpr absl::string_view kColumns[] = {"client", "seconds_per_example", "latency_s", "down_mbps",
                                          "up_mbps"};

double TransferSeconds(uint64_t bytes, double mbps) {
  if (mbps <= 0.0) return 0.0;  // 0 = unlimited
  return static_cast<double>(bytes) * 8.0 / (mbps * 1e6);
}

// Applies one row of the profiles CSV; *seen marks the clients already given.
absl::Status ApplyProfileRow(const CsvRow& row, std::vector<bool>* seen,
                             std::vector<DeviceProfile>* profiles) {
  FEDSIM_ASSIGN_OR_RETURN(const uint64_t client, row.Uint(0));
  if (client >= profiles->size()) {
    return row.Error(absl::StrCat("client ", client, " does not exist (num_clients is ",
                                  profiles->size(), ", ids are 0 .. ",
                                  profiles->empty() ? 0 : profiles->size() - 1, ")"));
  }
  double v[4];
  std::vector<std::string> bad;  // every bad value of the row, not just the first
  for (size_t k = 0; k < 4; ++k) {
    absl::StatusOr<double> d = row.Double(k + 1);
    if (!d.ok()) {
      bad.emplace_back(d.status().message());
    } else if (*d < 0) {
      bad.emplace_back(
          row.Error(absl::StrCat(kColumns[k + 1], " ", row[k + 1], " is negative; use a value >= 0",
                                 k >= 2 ? " (0 = unlimited bandwidth)" : ""))
              .message());
    } else {
      v[k] = *d;
    }
  }
  if (!bad.empty()) return absl::InvalidArgumentError(absl::StrJoin(bad, "\n"));
  if ((*seen)[client]) {
    return row.Error(absl::StrCat("client ", client, " is listed twice; keep one row per client"));
  }
  (*seen)[client] = true;
  DeviceProfile& p = (*profiles)[client];
  p.seconds_per_example = v[0];
  p.latency_down_s = v[1];
  p.latency_up_s = v[1];
  p.down_mbps = v[2];
  p.up_mbps = v[3];
  return absl::OkStatus();
}

}  // namespace

absl::Status ApplyProfilesCsv(const std::string& text, const std::string& display_name,
                              std::vector<DeviceProfile>* profiles) {
  std::vector<bool> seen(profiles->size(), false);
  return ReadCsv(text, display_name, kColumns,
                 [&](const CsvRow& row) { return ApplyProfileRow(row, &seen, profiles); },
                 {.report_all_errors = true});
}

absl::StatusOr<std::vector<DeviceProfile>> BuildDeviceProfiles(const config::Scenario& scenario,
                                                               const std::string& scenario_dir) {
  const uint32_t n = scenario.num_clients();
  const uint64_t seed = scenario.seed();
  const config::Devices& d = scenario.devices();
  ProblemList problems;
  ValidateDevices(d, n, &problems);
  if (!problems.empty()) return problems.ToStatus();
  std::vector<DeviceProfile> profiles(n);
  struct FieldSpec {
    const config::Distribution& dist;
    const char* name;
    double fallback;
    double DeviceProfile::*member;
  };
  const FieldSpec specs[] = {
      {d.seconds_per_example(), "seconds_per_example", kDefaultSecondsPerExample,
       &DeviceProfile::seconds_per_example},
      {d.latency_down_s(), "latency_down_s", 0.0, &DeviceProfile::latency_down_s},
      {d.latency_up_s(), "latency_up_s", 0.0, &DeviceProfile::latency_up_s},
      {d.down_mbps(), "down_mbps", 0.0, &DeviceProfile::down_mbps},
      {d.up_mbps(), "up_mbps", 0.0, &DeviceProfile::up_mbps},
  };
  for (const FieldSpec& spec : specs) {
    const std::string purpose = absl::StrCat("device.", spec.name);
    for (uint32_t i = 0; i < n; ++i) {
      const double v = DrawFromDistribution(spec.dist, seed, purpose, i, n, spec.fallback);
      if (!(v >= 0) || !std::isfinite(v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("devices.", spec.name, ": client ", i, " gets ", v,
                         ", which is negative or not finite; fix the distribution"));
      }
      profiles[i].*spec.member = v;
    }
  }
  if (d.has_profiles_csv() && !d.profiles_csv().empty()) {
    std::string path = d.profiles_csv();
    if (path[0] != '/' && !scenario_dir.empty()) path = absl::StrCat(scenario_dir, "/", path);
    std::vector<bool> seen(profiles.size(), false);
    absl::Status s = ReadCsvFile(
        path, kColumns, [&](const CsvRow& row) { return ApplyProfileRow(row, &seen, &profiles); },
        {.report_all_errors = true});
    if (s.code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(
          absl::StrCat("devices.profiles_csv: ", s.message(),
                       " (relative paths are relative to the scenario file's folder)"));
    }
    FEDSIM_RETURN_IF_ERROR(s);
  }
  return profiles;
}

double ExpectedTaskSeconds(const DeviceProfile& profile, uint64_t examples_processed,
                           uint64_t model_bytes) {
  return profile.latency_down_s + TransferSeconds(model_bytes, profile.down_mbps) +
         static_cast<double>(examples_processed) * profile.seconds_per_example +
         profile.latency_up_s + TransferSeconds(model_bytes, profile.up_mbps);
}

double DownloadSeconds(const DeviceProfile& profile, uint64_t model_bytes) {
  return profile.latency_down_s + TransferSeconds(model_bytes, profile.down_mbps);
}

double UploadSeconds(const DeviceProfile& profile, uint64_t model_bytes) {
  return profile.latency_up_s + TransferSeconds(model_bytes, profile.up_mbps);
}

double TaskSeconds(const DeviceProfile& profile, uint64_t examples_processed, uint64_t model_bytes,
                   double jitter_sigma, uint64_t seed, uint64_t task_id, uint32_t client) {
  const double expected = ExpectedTaskSeconds(profile, examples_processed, model_bytes);
  if (jitter_sigma <= 0.0) return expected;
  Rng rng(seed, "jitter", client, task_id);
  return expected * std::exp(jitter_sigma * rng.Normal());
}

}  // namespace fedsim
