#include "sim/devices.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "util/rng.h"

namespace fedsim {
namespace {

constexpr char kCsvHeader[] = "client,seconds_per_example,latency_s,down_mbps,up_mbps";

std::string Strip(absl::string_view s) { return std::string(absl::StripAsciiWhitespace(s)); }

double TransferSeconds(uint64_t bytes, double mbps) {
  if (mbps <= 0.0) return 0.0;  // 0 = unlimited
  return static_cast<double>(bytes) * 8.0 / (mbps * 1e6);
}

}  // namespace

double DrawFromDistribution(const config::Distribution& dist, uint64_t seed,
                            const std::string& purpose, uint32_t client, uint32_t num_clients,
                            double fallback) {
  switch (dist.kind_case()) {
    case config::Distribution::kConstant:
      return dist.constant();
    case config::Distribution::kUniform: {
      Rng rng(seed, purpose, client);
      return rng.Uniform(dist.uniform().lo(), dist.uniform().hi());
    }
    case config::Distribution::kLognormal: {
      Rng rng(seed, purpose, client);
      return rng.LogNormal(dist.lognormal().mu(), dist.lognormal().sigma());
    }
    case config::Distribution::kLinear: {
      const auto& l = dist.linear();
      if (num_clients <= 1) return l.base();
      return l.base() * (1.0 - static_cast<double>(client) * (l.x_percent() / 100.0) /
                                   static_cast<double>(num_clients - 1));
    }
    case config::Distribution::kTable:
      return client < static_cast<uint32_t>(dist.table().values_size())
                 ? dist.table().values(static_cast<int>(client))
                 : fallback;
    case config::Distribution::KIND_NOT_SET:
      break;
  }
  return fallback;
}

absl::Status ApplyProfilesCsv(const std::string& text, const std::string& display_name,
                              std::vector<DeviceProfile>* profiles) {
  std::vector<std::string> errors;
  auto error = [&](int line, const std::string& msg) {
    errors.push_back(absl::StrCat(display_name, ":", line, ": ", msg));
  };
  std::vector<bool> seen(profiles->size(), false);
  bool have_header = false;
  int line_no = 0;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    ++line_no;
    const std::string line = Strip(raw);
    if (line.empty() || line[0] == '#') continue;
    if (!have_header) {
      std::vector<std::string> cells = absl::StrSplit(line, ',');
      for (std::string& c : cells) c = Strip(c);
      if (absl::StrJoin(cells, ",") != kCsvHeader) {
        error(line_no,
              absl::StrCat("the header is '", line, "' but must be exactly '", kCsvHeader, "'"));
        break;  // the rows cannot be read without it
      }
      have_header = true;
      continue;
    }
    std::vector<std::string> cells = absl::StrSplit(line, ',');
    if (cells.size() != 5) {
      error(line_no, absl::StrCat("expected 5 cells (", kCsvHeader, "), got ", cells.size()));
      continue;
    }
    for (std::string& c : cells) c = Strip(c);
    uint64_t client = 0;
    if (!absl::SimpleAtoi(cells[0], &client)) {
      error(line_no, absl::StrCat("client '", cells[0], "' is not a non-negative integer"));
      continue;
    }
    if (client >= profiles->size()) {
      error(line_no,
            absl::StrCat("client ", client, " does not exist (num_clients is ", profiles->size(),
                         ", ids are 0 .. ", profiles->empty() ? 0 : profiles->size() - 1, ")"));
      continue;
    }
    static constexpr const char* kNames[] = {"seconds_per_example", "latency_s", "down_mbps",
                                             "up_mbps"};
    double v[4];
    bool ok = true;
    for (int k = 0; k < 4; ++k) {
      if (!absl::SimpleAtod(cells[k + 1], &v[k]) || !std::isfinite(v[k])) {
        error(line_no, absl::StrCat(kNames[k], " '", cells[k + 1], "' is not a number"));
        ok = false;
      } else if (v[k] < 0) {
        error(line_no, absl::StrCat(kNames[k], " ", cells[k + 1], " is negative; use a value >= 0",
                                    k >= 2 ? " (0 = unlimited bandwidth)" : ""));
        ok = false;
      }
    }
    if (!ok) continue;
    if (seen[client]) {
      error(line_no, absl::StrCat("client ", client, " is listed twice; keep one row per client"));
      continue;
    }
    seen[client] = true;
    DeviceProfile& p = (*profiles)[client];
    p.seconds_per_example = v[0];
    p.latency_down_s = v[1];
    p.latency_up_s = v[1];
    p.down_mbps = v[2];
    p.up_mbps = v[3];
  }
  if (!have_header && errors.empty()) {
    error(line_no, absl::StrCat("no header line; the file must start with '", kCsvHeader, "'"));
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
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
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      return absl::NotFoundError(
          absl::StrCat("devices.profiles_csv: cannot open '", path,
                       "' (relative paths are relative to the scenario file's folder)"));
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    if (absl::Status s = ApplyProfilesCsv(buffer.str(), path, &profiles); !s.ok()) return s;
  }
  return profiles;
}

double ExpectedTaskSeconds(const DeviceProfile& profile, uint64_t examples_processed,
                           uint64_t model_bytes) {
  return profile.latency_down_s + TransferSeconds(model_bytes, profile.down_mbps) +
         static_cast<double>(examples_processed) * profile.seconds_per_example +
         profile.latency_up_s + TransferSeconds(model_bytes, profile.up_mbps);
}

double TaskSeconds(const DeviceProfile& profile, uint64_t examples_processed, uint64_t model_bytes,
                   double jitter_sigma, uint64_t seed, uint64_t task_id, uint32_t client) {
  const double expected = ExpectedTaskSeconds(profile, examples_processed, model_bytes);
  if (jitter_sigma <= 0.0) return expected;
  Rng rng(seed, "jitter", client, task_id);
  return expected * std::exp(jitter_sigma * rng.Normal());
}

}  // namespace fedsim
