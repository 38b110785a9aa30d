#include "compare/progress.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace fedsim {

double RunShare(double virtual_time, double version, double max_virtual_s, uint64_t max_commits) {
  double share = 0;
  if (max_virtual_s > 0) share = std::max(share, virtual_time / max_virtual_s);
  if (max_commits > 0) share = std::max(share, version / static_cast<double>(max_commits));
  return std::clamp(share, 0.0, 1.0);
}

std::optional<double> ArmEta(const std::vector<RunProgress>& runs, double typical_run_s) {
  double longest = 0;
  int running = 0, queued = 0;
  for (const RunProgress& r : runs) {
    if (r.state == RunProgress::State::kQueued) ++queued;
    if (r.state != RunProgress::State::kRunning) continue;
    ++running;
    double left;
    if (r.share >= 0.01) {
      left = r.elapsed_s * (1 - r.share) / r.share;
    } else if (typical_run_s > 0) {
      left = std::max(0.0, typical_run_s - r.elapsed_s);
    } else {
      return std::nullopt;
    }
    longest = std::max(longest, left);
  }
  if (queued > 0 && typical_run_s <= 0) return std::nullopt;
  return longest + queued * std::max(0.0, typical_run_s) / std::max(1, running);
}

std::string FormatDuration(std::optional<double> seconds) {
  if (!seconds || !std::isfinite(*seconds)) return "?";
  const long s = std::lround(std::max(0.0, *seconds));
  if (s >= 3600) return absl::StrFormat("%ldh%02ldm", s / 3600, (s % 3600) / 60);
  if (s >= 60) return absl::StrFormat("%ldm%02lds", s / 60, s % 60);
  return absl::StrFormat("%lds", s);
}

std::string ArmProgressLine(const std::string& arm, int name_width,
                            const std::vector<RunProgress>& runs, std::optional<double> eta) {
  std::string line = absl::StrFormat("  %-*s", name_width, arm);
  double acc = -1;
  int done = 0;
  for (const RunProgress& r : runs) {
    if (r.state == RunProgress::State::kDone) ++done;
    if (r.state != RunProgress::State::kRunning) continue;
    absl::StrAppend(&line, absl::StrFormat("  seed %d %3.0f%%", r.seed, 100 * r.share));
    if (r.accuracy >= 0) acc = r.accuracy;
  }
  absl::StrAppend(&line, absl::StrFormat("  (%d/%d done)", done, runs.size()));
  if (acc >= 0) absl::StrAppend(&line, absl::StrFormat("  acc %.3f", acc));
  absl::StrAppend(&line, "  ETA ", FormatDuration(eta));
  return line;
}

}  // namespace fedsim
